using System.Runtime.InteropServices;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Native;
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

    /// <summary>False while the queue is inactive (see <see cref="Deactivate"/>): injection goes elsewhere.</summary>
    private volatile bool _accepting = true;

    /// <summary>Injections between their check of <see cref="_accepting"/> and the end of their enqueue.</summary>
    private int _injecting;

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
    internal bool IsIdle => _ready.Count == 0 && _burstCount == 0 && !IsBusy;

    /// <summary>
    /// Copies a frame into the FIFO. <see cref="InjectResult.Inactive"/> when the queue is not
    /// taking traffic (the caller steers the frame to an active queue); FIFO full is counted.
    /// </summary>
    internal InjectResult Inject(ReadOnlySpan<byte> frame)
    {
        // Entry count first, then the flag (Interlocked is a full fence): Deactivate writes the
        // flag, fences, then waits for the count to drain, so a frame is either refused here or
        // in the FIFO before Deactivate starts draining it.
        Interlocked.Increment(ref _injecting);
        if (!_accepting)
        {
            Interlocked.Decrement(ref _injecting);
            return InjectResult.Inactive;
        }

        if (frame.Length > _slotSize)
        {
            Interlocked.Decrement(ref _injecting);
            Counters.Drop(DropReason.FrameTooLarge);
            return InjectResult.Accepted;
        }

        if (!_free.TryDequeue(out nuint slot))
        {
            Interlocked.Decrement(ref _injecting);
            Counters.Drop(DropReason.RxFifoFull);
            return InjectResult.FifoFull;
        }

        frame.CopyTo(new Span<byte>(_slots + ((long)slot * _slotSize), _slotSize));
        _lengths[(int)slot] = frame.Length;
        _ready.TryEnqueue(slot);
        Interlocked.Decrement(ref _injecting);
        if (_sleeping)
        {
            _doorbell.Set();
        }

        return InjectResult.Accepted;
    }

    /// <summary>
    /// Takes the queue out of service without losing a frame: refuses new injections, waits for
    /// those under way, lets the poll loop deliver what the FIFO holds, then stops it and returns
    /// the memory it ran on (the caller frees it). Throws EBUSY, accepting again, when the FIFO
    /// does not drain within <paramref name="timeout"/>.
    /// </summary>
    internal QueueMemory Deactivate(TimeSpan timeout)
    {
        _accepting = false;
        Interlocked.MemoryBarrier();
        SpinWait spin = default;
        while (Volatile.Read(ref _injecting) != 0)
        {
            spin.SpinOnce();
        }

        Wake();
        if (!SpinWait.SpinUntil(() => IsIdle, timeout))
        {
            _accepting = true;
            throw new NetmemException(Errno.EBUSY, $"{Device.Name}: rx queue {QueueIndex} did not drain its FIFO within {timeout}");
        }

        return Stop();
    }

    /// <summary>Puts the queue back in service on <paramref name="mem"/>.</summary>
    internal void Activate(QueueMemory mem)
    {
        Start(mem);
        _accepting = true;
    }

    /// <inheritdoc/>
    protected override bool Poll(QueueMemory mem)
    {
        // A burst whose last frame faulted is still in hand (_burstNext == _burstCount != 0):
        // it falls through to the release below instead of being overwritten by a new one.
        if (_burstCount == 0)
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

    /// <inheritdoc/>
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

    /// <inheritdoc/>
    protected override void Wake() => _doorbell.Set();

    /// <inheritdoc/>
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

/// <summary>What <see cref="SimNicQueue.Inject"/> did with a frame.</summary>
internal enum InjectResult
{
    /// <summary>In the FIFO (or counted as too large): delivered or counted later.</summary>
    Accepted,

    /// <summary>The FIFO was full; counted as <see cref="DropReason.RxFifoFull"/>.</summary>
    FifoFull,

    /// <summary>The queue is inactive; nothing was counted, steer the frame elsewhere.</summary>
    Inactive,
}
