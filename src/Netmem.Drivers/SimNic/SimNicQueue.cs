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
    private volatile bool _sleeping;
    private int _disposed;

    internal SimNicQueue(SimNic nic, int index, int fifoSlots, int maxFrame, int? pinCpu)
        : base(nic.Device, index, pinCpu)
    {
        _nic = nic;
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
    internal bool IsIdle => _ready.Count == 0 && !IsBusy;

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
        Span<nuint> batch = stackalloc nuint[Batch];
        int n = _ready.DequeueBurst(batch);
        for (int i = 0; i < n; i++)
        {
            int slot = (int)batch[i];
            ReadOnlySpan<byte> frame = new(_slots + ((long)slot * _slotSize), _lengths[slot]);
            IpDropReason r = IpPacketParser.ParseEthernet(frame, out IpPacketInfo p);
            if (r != IpDropReason.None)
            {
                Counters.Drop(DropReasons.From(r));
                continue;
            }

            RxDelivery.Deliver(frame, p, mem, _nic.Dma, _nic.Flows, Counters);
        }

        _free.EnqueueBurst(batch[..n]);
        return n != 0;
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
