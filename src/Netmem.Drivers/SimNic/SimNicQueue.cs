using System.Runtime.InteropServices;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Rings;

namespace Netmem.Drivers.SimNic;

/// <summary>
/// One SimNic rx queue: a receive FIFO that injected frames wait in (the wire), drained by the
/// queue's poll loop, which parses frames, places them into the queue's memory and delivers them.
/// </summary>
/// <remarks>
/// The FIFO is two <see cref="PtrRing"/>s of slot indices over one unmanaged block: free slots
/// and ready slots, so injectors on any thread and the poll loop never lock. Frames waiting in
/// the FIFO survive a queue restart. The type is public only as <see cref="SimNic"/>'s base type
/// argument; everything on it beyond <see cref="NapiPollThread"/> is internal.
/// </remarks>
public sealed unsafe class SimNicQueue : NapiPollThread
{
    private const int Batch = 32;

    private readonly SimNic _nic;
    private readonly int _slotSize;
    private readonly byte* _slots;
    private readonly int[] _lengths;
    private readonly PtrRing _free;
    private readonly PtrRing _ready;
    private readonly ManualResetEventSlim _doorbell = new(false);
    private readonly int _mtu;

    /// <summary>FIFO slots the poll loop took in its last burst; processed in order, freed together.</summary>
    private readonly nuint[] _burst = new nuint[Batch];

    /// <summary>Slots in <see cref="_burst"/>; written by the poll loop, read by <see cref="IsIdle"/>.</summary>
    private volatile int _burstCount;

    /// <summary>The next slot of <see cref="_burst"/> to process: the frame in hand while a poll runs.</summary>
    private volatile int _burstNext;
    private volatile bool _sleeping;
    private int _disposed;

    internal SimNicQueue(SimNic nic, int index, int fifoSlots, int mtu, int maxFrame, int? pinCpu)
        : base(nic.Device, index, pinCpu)
    {
        _nic = nic;
        _mtu = mtu;
        _slotSize = (maxFrame + 63) & ~63;
        _slots = (byte*)NativeMemory.AlignedAlloc((nuint)fifoSlots * (nuint)_slotSize, 64);
        _lengths = new int[fifoSlots];
        _free = new PtrRing(fifoSlots);
        _ready = new PtrRing(fifoSlots);
        for (int i = 0; i < fifoSlots; i++)
        {
            _free.TryEnqueue((nuint)i);
        }
    }

    /// <summary>FIFO slots free for injection.</summary>
    internal int FreeSlots => _free.Count;

    /// <summary>Frames waiting in the FIFO.</summary>
    internal int Pending => _ready.Count;

    /// <summary>True when no frame waits in the FIFO and none is being processed.</summary>
    /// <remarks>Reads the backlog (FIFO, then the burst taken from it) before the busy flag; see <see cref="NapiPollThread.IsBusy"/>.</remarks>
    internal bool IsIdle => _ready.Count == 0 && _burstNext == _burstCount && !IsBusy;

    /// <summary>Copies a frame into the FIFO. False (and counted) when the FIFO is full.</summary>
    internal bool Inject(ReadOnlySpan<byte> frame)
    {
        if (frame.Length > _slotSize)
        {
            Counters.Drop(DropReason.FrameTooLarge);
            return true;
        }

        if (!_free.TryDequeue(out nuint slot))
        {
            Counters.Drop(DropReason.RxFifoFull);
            return false;
        }

        frame.CopyTo(new Span<byte>(_slots + ((long)slot * _slotSize), _slotSize));
        _lengths[(int)slot] = frame.Length;
        _ready.TryEnqueue(slot);
        if (_sleeping)
        {
            _doorbell.Set();
        }

        return true;
    }

    protected override bool Poll(QueueMemory mem)
    {
        if (_burstNext == _burstCount)
        {
            _burstNext = 0;
            _burstCount = _ready.DequeueBurst(_burst);
            if (_burstCount == 0)
            {
                return false;
            }
        }

        // A burst cut short by a fault resumes here, after the frame that failed.
        while (_burstNext < _burstCount)
        {
            int slot = (int)_burst[_burstNext];
            Receive(new ReadOnlySpan<byte>(_slots + ((long)slot * _slotSize), _lengths[slot]), mem);
            _burstNext++;
        }

        _free.EnqueueBurst(_burst.AsSpan(0, _burstCount));
        _burstNext = 0;
        _burstCount = 0;
        return true;
    }

    /// <summary>The receive step: parse, check the MTU, deliver or count the drop.</summary>
    private void Receive(ReadOnlySpan<byte> frame, QueueMemory mem)
    {
        IpDropReason r = IpPacketParser.ParseEthernet(frame, out IpPacketInfo p);

        // The IP packet is everything after the link header: a NIC refuses it past the MTU
        // before looking inside. L3Offset is 0 only when the link header itself was refused.
        if (p.L3Offset != 0 && frame.Length - p.L3Offset > _mtu)
        {
            Counters.Drop(DropReason.PacketTooBig);
            return;
        }

        if (r != IpDropReason.None)
        {
            Counters.Drop(DropReasons.From(r));
            return;
        }

        RxDelivery.Deliver(frame, p, mem, _nic.Dma, _nic.Flows, Counters);
    }

    /// <summary>The frame that failed is dropped: the burst goes on with the next one.</summary>
    protected override bool DropFrameInHand(QueueMemory mem)
    {
        if (_burstNext >= _burstCount)
        {
            return false;
        }

        _burstNext++;
        return true;
    }

    protected override void WaitForWork()
    {
        _sleeping = true;
        if (_ready.IsEmpty && !StopRequested)
        {
            _doorbell.Wait(1);
        }

        _sleeping = false;
        _doorbell.Reset();
    }

    protected override void Wake() => _doorbell.Set();

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _free.Dispose();
            _ready.Dispose();
            NativeMemory.AlignedFree(_slots);
        }
    }
}
