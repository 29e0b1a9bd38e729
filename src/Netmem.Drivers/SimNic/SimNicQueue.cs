using System.Runtime.InteropServices;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Native;
using Netmem.Rings;

namespace Netmem.Drivers.SimNic;

/// <summary>
/// One SimNic rx queue: a receive FIFO that injected frames wait in (the wire), and a poll loop
/// on its own thread (the queue's NAPI consumer) that parses frames, places them into the
/// queue's memory and delivers them.
/// </summary>
/// <remarks>
/// The FIFO is two <see cref="PtrRing"/>s of slot indices over one unmanaged block: free slots
/// and ready slots, so injectors on any thread and the poll loop never lock. Stop and start are
/// a handshake with the poll loop: stop parks it between frames and takes its memory; start
/// hands it memory and lets it run. Frames waiting in the FIFO survive a restart.
/// </remarks>
internal sealed unsafe class SimNicQueue : IDisposable
{
    private const int Batch = 32;

    private readonly SimNic _nic;
    private readonly int _index;
    private readonly int _slotSize;
    private readonly byte* _slots;
    private readonly int[] _lengths;
    private readonly PtrRing _free;
    private readonly PtrRing _ready;
    private readonly ManualResetEventSlim _doorbell = new(false);
    private readonly ManualResetEventSlim _run = new(false);
    private readonly ManualResetEventSlim _stopped = new(false);
    private readonly ManualResetEventSlim _resumed = new(false);
    private readonly int? _pinCpu;
    private Thread? _thread;
    private QueueMemory? _mem;
    private volatile bool _stopRequested;
    private volatile bool _exit;
    private volatile bool _sleeping;

    /// <summary>
    /// True from before the poll loop takes a burst from the FIFO until it has processed it, so
    /// a frame is always either counted in <see cref="Pending"/> or covered by this flag.
    /// </summary>
    private volatile bool _busy;

    public SimNicQueue(SimNic nic, int index, int fifoSlots, int maxFrame, int? pinCpu)
    {
        _nic = nic;
        _index = index;
        _pinCpu = pinCpu;
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

    public RxCounters Counters { get; } = new();

    /// <summary>The memory the queue runs on now (null while stopped).</summary>
    public QueueMemory? Memory => _mem;

    /// <summary>Frames waiting in the FIFO.</summary>
    public int Pending => _ready.Count;

    /// <summary>
    /// True when no frame waits in the FIFO and none is being processed. Reads the FIFO before
    /// the busy flag: a frame taken off the FIFO between the two reads is covered by the flag.
    /// </summary>
    public bool IsIdle => _ready.Count == 0 && !_busy;

    /// <summary>Copies a frame into the FIFO. False (and counted) when the FIFO is full.</summary>
    public bool Inject(ReadOnlySpan<byte> frame)
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

    /// <summary>Runs the queue on <paramref name="mem"/>; the first call starts the poll thread.</summary>
    public void Start(QueueMemory mem)
    {
        bool parked = _stopped.IsSet;
        _mem = mem;
        _stopRequested = false;
        _stopped.Reset();
        _resumed.Reset();
        _run.Set();
        if (_thread is null)
        {
            _thread = new Thread(PollLoop) { IsBackground = true, Name = $"{_nic.Device.Name}-napi{_index}" };
            _thread.Start();
        }
        else if (parked && !_resumed.Wait(TimeSpan.FromSeconds(30)))
        {
            // Wait for the parked loop to leave _run.Wait() before returning. Without this a
            // Stop() right after Start() could Reset _run before the loop rechecked it: the loop
            // (ManualResetEventSlim re-tests IsSet when woken) stayed parked without setting
            // _stopped again, and that Stop() timed out after 30 s with EBUSY.
            throw new NetmemException(Errno.EBUSY, $"{_nic.Device.Name} queue {_index}: poll loop did not resume");
        }
    }

    /// <summary>Parks the poll loop between frames and returns the memory it ran on.</summary>
    public QueueMemory Stop()
    {
        _run.Reset();
        _stopRequested = true;
        _doorbell.Set();
        if (_thread is not null && !_stopped.Wait(TimeSpan.FromSeconds(30)))
        {
            throw new NetmemException(Errno.EBUSY, $"{_nic.Device.Name} queue {_index}: poll loop did not stop");
        }

        QueueMemory mem = _mem ?? throw new NetmemException(Errno.EINVAL, $"{_nic.Device.Name} queue {_index} is not running");
        _mem = null;
        return mem;
    }

    private void PollLoop()
    {
        var napi = _nic.Device.RxQueues[_index].Napi;
        napi.BindToCurrentThread();
        if (_pinCpu is int cpu)
        {
            Sys.SchedSetaffinity(cpu);
        }

        Span<nuint> batch = stackalloc nuint[Batch];
        SpinWait idle = default;
        while (true)
        {
            if (_stopRequested)
            {
                _stopped.Set();
                _run.Wait();
                if (_exit)
                {
                    break;
                }

                _resumed.Set();
                continue;
            }

            _busy = true;
            int n = _ready.DequeueBurst(batch);
            if (n == 0)
            {
                _busy = false;
                Idle(ref idle);
                continue;
            }

            idle.Reset();
            QueueMemory mem = _mem!;
            for (int i = 0; i < n; i++)
            {
                int slot = (int)batch[i];
                Process(new ReadOnlySpan<byte>(_slots + ((long)slot * _slotSize), _lengths[slot]), mem);
            }

            _free.EnqueueBurst(batch[..n]);
            _busy = false;
        }

        napi.Unbind();
        _stopped.Set();
    }

    private void Process(ReadOnlySpan<byte> frame, QueueMemory mem)
    {
        DropReason r = PacketParser.ParseEthernet(frame, out ParsedPacket p);
        if (r != DropReason.None)
        {
            Counters.Drop(r);
            return;
        }

        RxDelivery.Deliver(frame, p, mem, _nic.Dma, _nic.Flows, Counters);
    }

    private void Idle(ref SpinWait idle)
    {
        if (!idle.NextSpinWillYield)
        {
            idle.SpinOnce(sleep1Threshold: -1);
            return;
        }

        _sleeping = true;
        if (_ready.IsEmpty && !_stopRequested)
        {
            _doorbell.Wait(1);
        }

        _sleeping = false;
        _doorbell.Reset();
        idle.Reset();
    }

    public void Dispose()
    {
        _exit = true;
        _stopRequested = true;
        _run.Set();
        _doorbell.Set();
        _thread?.Join(TimeSpan.FromSeconds(30));
        _free.Dispose();
        _ready.Dispose();
        NativeMemory.AlignedFree(_slots);
    }
}
