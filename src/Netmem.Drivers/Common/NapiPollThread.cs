using Netmem.Diagnostics;
using Netmem.Drivers.Parsing;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Drivers.Common;

/// <summary>
/// A queue's poll loop on its own thread (the kernel's NAPI context): it owns the queue's memory
/// while running, and stops and starts as the queue management ops ask.
/// </summary>
/// <remarks>
/// Stop and start are a handshake: <see cref="Stop"/> asks the loop to park between polls,
/// waits until it has, and takes its memory; <see cref="Start"/> hands it memory and lets it
/// run. The loop binds the queue's <see cref="NapiContext"/> to its thread, so the pools know
/// their consumer, and may pin itself to a CPU. A queue that needs more than its memory to run
/// (a kernel socket bound to the memory) brings it up in <see cref="OnStarting"/> and down in
/// <see cref="OnStopping"/> and <see cref="OnStopped"/>.
/// <para>No exception escapes the thread (the kernel's WARN-and-drop): one thrown by a receive
/// step is caught, counted in <see cref="RxCounters.PollExceptions"/>, traced through
/// <see cref="NetmemEventSource"/>, the datagram in hand is given back to its pool
/// (<see cref="QueueMemory"/> keeps it for that reason) and, if a frame was in hand, counted as a
/// <see cref="DropReason.PollFault"/> drop; then the loop polls on.</para>
/// <para>The type is public only because <see cref="NapiDriver{TQueue}"/>, the base of the public
/// drivers, names it as its queue constraint; its constructor and its handshake are internal to
/// Netmem.Drivers, so it is not an extension point.</para>
/// </remarks>
public abstract class NapiPollThread : IDisposable
{
    /// <summary>How often a parked loop re-announces that it is parked (see <see cref="Loop"/>).</summary>
    private const int ParkedRecheckMs = 5;

    private readonly ManualResetEventSlim _run = new(false);
    private readonly ManualResetEventSlim _stopped = new(false);
    private readonly ManualResetEventSlim _resumed = new(false);
    private readonly NapiContext _napi;
    private readonly int? _pinCpu;
    private readonly string _name;
    private Thread? _thread;
    private QueueMemory? _mem;
    private volatile bool _stopRequested;
    private volatile bool _exit;

    /// <summary>True from before a poll takes work until it has processed it (see <see cref="IsBusy"/>).</summary>
    private volatile bool _busy;

    private protected NapiPollThread(NetDevice device, int queueIndex, int? pinCpu)
    {
        ArgumentNullException.ThrowIfNull(device);
        Device = device;
        QueueIndex = queueIndex;
        _napi = device.RxQueues[queueIndex].Napi;
        _pinCpu = pinCpu;
        _name = $"{device.Name}-napi{queueIndex}";
    }

    internal NetDevice Device { get; }

    internal int QueueIndex { get; }

    /// <summary>Delivered and dropped counts of this queue.</summary>
    internal RxCounters Counters { get; } = new();

    /// <summary>The memory the queue runs on now (null while stopped).</summary>
    internal QueueMemory? Memory => _mem;

    /// <summary>
    /// True while a poll is in progress. A driver reads its own backlog first and this flag
    /// second: work taken off the backlog between the two reads is covered by the flag.
    /// </summary>
    private protected bool IsBusy => _busy;

    /// <summary>True while the loop is asked to park.</summary>
    private protected bool StopRequested => _stopRequested;

    /// <summary>
    /// Runs the queue on <paramref name="mem"/>; the first call starts the thread. When
    /// <see cref="OnStarting"/> throws, the queue stays stopped and <paramref name="mem"/> is still
    /// the caller's.
    /// </summary>
    internal void Start(QueueMemory mem)
    {
        ArgumentNullException.ThrowIfNull(mem);
        OnStarting(mem);
        bool parked = _stopped.IsSet;
        _mem = mem;
        _stopRequested = false;
        _stopped.Reset();
        _resumed.Reset();
        _run.Set();
        if (_thread is null)
        {
            _thread = new Thread(Loop) { IsBackground = true, Name = _name };
            _thread.Start();
        }
        else if (parked && !_resumed.Wait(TimeSpan.FromSeconds(30)))
        {
            // Wait for the parked loop to leave its wait before returning: otherwise a Stop right
            // after this Start could reset the run event before the loop saw it set, leaving the
            // loop parked without acknowledging that Stop.
            throw new NetmemException(Errno.EBUSY, $"{_name}: poll loop did not resume");
        }
    }

    /// <summary>
    /// Parks the loop between polls and returns the memory it ran on: <see cref="OnStopping"/>
    /// while the loop still runs, then the handshake, then <see cref="OnStopped"/>.
    /// </summary>
    internal QueueMemory Stop()
    {
        if (_mem is not null && !_stopRequested)
        {
            OnStopping();
        }

        _run.Reset();
        _stopRequested = true;
        Wake();
        if (_thread is not null && !_stopped.Wait(TimeSpan.FromSeconds(30)))
        {
            throw new NetmemException(Errno.EBUSY, $"{_name}: poll loop did not stop");
        }

        QueueMemory mem = _mem ?? throw new NetmemException(Errno.EINVAL, $"{_name}: queue is not running");
        _mem = null;
        OnStopped(mem);
        return mem;
    }

    /// <summary>
    /// Called by <see cref="Start"/> before the loop runs on <paramref name="mem"/>: bring up what
    /// the queue needs beside its memory (an AF_XDP socket on the memory's UMEM), as the kernel's
    /// <c>ndo_queue_start</c> programs the hardware. A throw leaves the queue stopped and
    /// <paramref name="mem"/> untouched, so the caller can free it or start the old memory again.
    /// </summary>
    protected virtual void OnStarting(QueueMemory mem)
    {
    }

    /// <summary>
    /// Called by <see cref="Stop"/> while the loop still runs: steer new work away from the queue
    /// and let the loop finish what it has already taken in (bounded), before it parks.
    /// </summary>
    protected virtual void OnStopping()
    {
    }

    /// <summary>
    /// Called by <see cref="Stop"/> once the loop has parked, with the memory it ran on: take back
    /// from the hardware whatever of <paramref name="mem"/> it still holds, so the memory can be
    /// started again or freed.
    /// </summary>
    protected virtual void OnStopped(QueueMemory mem)
    {
    }

    /// <summary>Processes what is ready using <paramref name="mem"/>; false when there was nothing.</summary>
    protected abstract bool Poll(QueueMemory mem);

    /// <summary>Waits briefly for work (bounded, so stop requests are seen).</summary>
    protected abstract void WaitForWork();

    /// <summary>Interrupts <see cref="WaitForWork"/>.</summary>
    protected abstract void Wake();

    /// <summary>
    /// Called on the poll thread after <see cref="Poll"/> threw, once the datagram the shared
    /// receive path had in hand went back to its pool: give back whatever else the unfinished
    /// poll held (a descriptor, a FIFO slot) and make the next poll start after the frame that
    /// failed. True when a frame was in hand; it is then counted as a
    /// <see cref="DropReason.PollFault"/> drop.
    /// </summary>
    protected virtual bool DropFrameInHand(QueueMemory mem) => false;

    private void Loop()
    {
        _napi.BindToCurrentThread();
        if (_pinCpu is int cpu)
        {
            try
            {
                Sys.SchedSetaffinity(cpu);
            }
            catch (Exception e)
            {
                // The queue still works unpinned; say why it is not pinned.
                Report(e);
            }
        }

        SpinWait spin = default;
        while (true)
        {
            if (_stopRequested)
            {
                _stopped.Set();

                // Fix: a Start followed at once by a Stop (an unbind restart then a device
                // Dispose, or two quick restarts) can set and reset _run before this thread
                // wakes. ManualResetEventSlim.Wait rechecks IsSet, so the thread stays parked
                // while Start has already reset _stopped, and that Stop waited 30 s and threw
                // EBUSY. Waking now and then to say "parked" again closes the gap: a parked
                // loop is exactly what the Stop wants, and the memory it returns is the one
                // Start handed over.
                while (!_run.Wait(ParkedRecheckMs))
                {
                    if (_stopRequested)
                    {
                        _stopped.Set();
                    }
                }

                if (_exit)
                {
                    break;
                }

                _resumed.Set();
                continue;
            }

            QueueMemory mem = _mem!;
            _busy = true;
            bool worked;
            try
            {
                worked = Poll(mem);
            }
            catch (Exception e)
            {
                // Go straight on to the next frame when one was dropped; otherwise back off as
                // after an empty poll, so a fault that repeats without frames does not spin.
                worked = OnPollFault(mem, e);
            }

            _busy = false;
            if (worked)
            {
                spin.Reset();
            }
            else if (!spin.NextSpinWillYield)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
            else
            {
                try
                {
                    WaitForWork();
                }
                catch (Exception e)
                {
                    Report(e);
                }

                spin.Reset();
            }
        }

        _napi.Unbind();
        _stopped.Set();
    }

    /// <summary>
    /// A receive step threw: give back the datagram in hand, let the driver drop the frame it
    /// was on, count and trace. Runs on the poll thread, the consumer of the queue's pools.
    /// True when a frame was dropped.
    /// </summary>
    private bool OnPollFault(QueueMemory mem, Exception e)
    {
        Report(e);
        try
        {
            mem.InHand.GiveBack();
            if (DropFrameInHand(mem))
            {
                Counters.Drop(DropReason.PollFault);
                return true;
            }
        }
        catch (Exception cleanup)
        {
            // Giving back failed too (a pool that is itself broken): count it and go on.
            Report(cleanup);
        }

        return false;
    }

    /// <summary>Counts a caught exception and traces it (when a listener asked for errors).</summary>
    private void Report(Exception e)
    {
        long count = Counters.PollException();
        try
        {
            NetmemEventSource.Log.NapiPollCaught(Device, QueueIndex, count, e);
        }
        catch (Exception)
        {
            // Tracing must not take the poll loop down either; the counter already has it.
        }
    }

    /// <summary>Stops the queue if it runs, frees the memory it ran on, and ends the thread (device teardown).</summary>
    internal void Shutdown()
    {
        if (Memory is not null)
        {
            Stop().Free();
        }

        Dispose();
    }

    /// <summary>Ends the thread. The queue's memory must have been taken with <see cref="Stop"/> first.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// Ends the poll thread (waits up to 30 s for it) on the first call with <paramref name="disposing"/>
    /// true; later calls do nothing. A queue type that owns more (a doorbell, a FIFO) overrides,
    /// calls this first, then releases its own.
    /// </summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing || _exit)
        {
            return;
        }

        _exit = true;
        _stopRequested = true;
        _run.Set();
        Wake();
        _thread?.Join(TimeSpan.FromSeconds(30));
    }
}
