using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Net;

namespace Netmem.Drivers.SimNic;

/// <summary>
/// A software NIC with n rx queues, header-data split and full queue management ops, fed by
/// frames injected from any thread. It exercises everything a hardware driver would: page
/// pools per queue (a readable header pool and a payload pool that takes the queue's memory
/// provider), rx descriptor rings with DMA addresses, device DMA into <c>net_iov</c>s, flow
/// steering to <see cref="DevmemSocket"/>s, and drop accounting by reason.
/// </summary>
public sealed class SimNic : IQueueManagementOps, IRxChannelOps, IDisposable
{
    /// <summary>How long deactivating a queue waits for its FIFO to drain.</summary>
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    private readonly SimNicOptions _options;
    private readonly SimNicQueue[] _queues;
    private bool _disposed;

    /// <summary>Queues taking traffic: frames injected for a queue at or past it go to an active one.</summary>
    private volatile int _activeQueues;

    public SimNic(string name, SimNicOptions? options = null)
    {
        _options = options ?? new SimNicOptions();
        if (_options.RxQueues < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.RxQueues, "A SimNic needs at least one rx queue.");
        }

        Device = new NetDevice(name, _options.RxQueues, this)
        {
            TcpDataSplit = _options.HeaderDataSplit ? TcpDataSplit.Enabled : TcpDataSplit.Disabled,
            ChannelOps = this,
        };
        _activeQueues = _options.RxQueues;
        Dma = new DmaDevice(name + "-dma");
        Device.DmaDevice = Dma;
        _queues = new SimNicQueue[_options.RxQueues];
        Device.Register();
        try
        {
            for (int i = 0; i < _queues.Length; i++)
            {
                int? cpu = _options.PinCpus is { Count: > 0 } pins ? pins[i % pins.Count] : null;
                _queues[i] = new SimNicQueue(this, i, _options.FifoSlots, _options.MaxFrame, cpu);
                _queues[i].Start((QueueMemory)MemAlloc(Device, i));
            }

            Device.Up();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The device the core sees: bind providers through it.</summary>
    public NetDevice Device { get; }

    /// <summary>The device's IOVA space: bind dmabuf regions for this NIC through it.</summary>
    public DmaDevice Dma { get; }

    /// <summary>Flow steering table: open sockets here.</summary>
    public FlowSteering Flows { get; } = new();

    public SimNicOptions Options => _options;

    /// <summary>Opens a socket for a flow on this NIC.</summary>
    public DevmemSocket OpenSocket(FlowKey flow, int maxOutstanding = 4096) => Flows.Open(flow, maxOutstanding);

    /// <summary>Counters of queue <paramref name="queue"/>.</summary>
    public RxCounters QueueCounters(int queue) => _queues[queue].Counters;

    /// <summary>The memory queue <paramref name="queue"/> runs on now.</summary>
    public QueueMemory? QueueMemory(int queue) => _queues[queue].Memory;

    /// <summary>FIFO slots free for <see cref="Inject"/> on queue <paramref name="queue"/>.</summary>
    public int FreeFifoSlots(int queue) => _queues[queue].FreeSlots;

    /// <summary>Frames waiting in queue <paramref name="queue"/>'s FIFO.</summary>
    public int Pending(int queue) => _queues[queue].Pending;

    /// <summary>
    /// Puts a frame on the wire for queue <paramref name="queue"/>. False when the queue's FIFO
    /// is full (counted as <see cref="DropReason.RxFifoFull"/>); every accepted frame is later
    /// delivered or counted as dropped. A frame for a queue that is not active (see
    /// <see cref="NetDevice.SetRxChannels"/>) goes to active queue <c>queue % active</c>, as the
    /// NIC's RSS table spreads traffic over the active queues only.
    /// </summary>
    public bool Inject(int queue, ReadOnlySpan<byte> frame)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if ((uint)queue >= (uint)_queues.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(queue), queue, $"{Device.Name} has {_queues.Length} rx queues.");
        }

        while (true)
        {
            int active = _activeQueues;
            InjectResult r = _queues[queue < active ? queue : queue % active].Inject(frame);
            if (r != InjectResult.Inactive)
            {
                return r == InjectResult.Accepted;
            }

            // The queue was deactivated after the count was read; the count is already lower.
        }
    }

    /// <summary>Waits until every queue's FIFO is empty (bounded), so counters are final.</summary>
    public bool WaitIdle(TimeSpan timeout)
    {
        DateTime end = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < end)
        {
            // A burst the poll loop has taken off the FIFO but not yet delivered is covered by IsIdle.
            if (_queues.All(q => q.IsIdle))
            {
                return true;
            }

            Thread.Sleep(1);
        }

        return false;
    }

    /// <inheritdoc/>
    public object MemAlloc(NetDevice device, int queueIndex) =>
        Common.QueueMemory.Allocate(device, queueIndex, _options.RxRingSize, _options.PoolSize, _options.PayloadPoolAllowsUnreadable, _options.MaxFrame, _options.Arena);

    /// <inheritdoc/>
    public void MemFree(NetDevice device, object queueMemory) => ((QueueMemory)queueMemory).Free();

    /// <inheritdoc/>
    public void Start(NetDevice device, object queueMemory, int queueIndex) => _queues[queueIndex].Start((QueueMemory)queueMemory);

    /// <inheritdoc/>
    public object Stop(NetDevice device, int queueIndex) => _queues[queueIndex].Stop();

    /// <inheritdoc/>
    /// <remarks>
    /// Growing starts each new queue on fresh memory before steering traffic to it. Shrinking
    /// steers traffic away first, then each queue delivers what its FIFO holds before it stops
    /// and its memory is freed: no frame is lost. A failure restores the old set of queues.
    /// </remarks>
    public void SetRxChannels(NetDevice device, int oldCount, int newCount)
    {
        if (newCount > oldCount)
        {
            int started = oldCount;
            try
            {
                for (; started < newCount; started++)
                {
                    _queues[started].Activate((QueueMemory)MemAlloc(device, started));
                }
            }
            catch
            {
                for (int i = started - 1; i >= oldCount; i--)
                {
                    _queues[i].Deactivate(DrainTimeout).Free();
                }

                throw;
            }

            _activeQueues = newCount;
            return;
        }

        _activeQueues = newCount;
        for (int i = oldCount - 1; i >= newCount; i--)
        {
            QueueMemory mem;
            try
            {
                mem = _queues[i].Deactivate(DrainTimeout);
            }
            catch
            {
                // Queue i is still accepting (Deactivate put it back); restart those already stopped.
                for (int j = i + 1; j < oldCount; j++)
                {
                    _queues[j].Activate((QueueMemory)MemAlloc(device, j));
                }

                _activeQueues = oldCount;
                throw;
            }

            mem.Free();
        }
    }

    /// <summary>
    /// Stops the poll loops, frees queue memory, closes every socket (returning what they hold)
    /// and unregisters the device.
    /// </summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Flows.CloseAll();
        foreach (SimNicQueue? q in _queues)
        {
            q?.Shutdown();
        }

        Device.Unregister();
    }

    public override string ToString() => $"SimNic {Device}";
}
