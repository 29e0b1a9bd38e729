using Netmem.Devmem;
using Netmem.Net;

namespace Netmem.Drivers.Common;

/// <summary>
/// The part every receive driver shares: a <see cref="NetDevice"/> with one
/// <see cref="NapiPollThread"/> per rx queue, each running on a <see cref="Common.QueueMemory"/>,
/// the queue management ops over them (mem alloc, mem free, start, stop), flow steering to
/// <see cref="DevmemSocket"/>s, per-queue counters, and device registration and teardown. A
/// driver derives from it, supplies its queue type (whose <see cref="NapiPollThread.Poll"/> is
/// the driver's receive step) and calls <see cref="RegisterAndStart"/> from its constructor. A
/// driver whose queues need more than <see cref="Common.QueueMemory"/> (an AF_XDP socket and its
/// UMEM) overrides <see cref="MemAlloc"/> to return a derived queue memory, and brings the rest up
/// and down in its queue's start and stop hooks (<see cref="NapiPollThread"/>).
/// <para>Its public members are what a user of a driver calls (<see cref="Device"/>,
/// <see cref="Dma"/>, <see cref="OpenSocket"/>, <see cref="QueueCounters"/>, ...). Deriving is
/// reserved to the drivers in Netmem.Drivers (the constructor is <c>private protected</c>): a
/// driver outside it implements <see cref="IQueueManagementOps"/> over its own page pools, as
/// <c>docs/guides/writing-a-driver.md</c> shows.</para>
/// </summary>
/// <typeparam name="TQueue">
/// The driver's rx queue: its poll loop. It must be as visible as the driver (C# requires a
/// public class's base type arguments to be public); keep its constructor and its own members
/// internal.
/// </typeparam>
/// <remarks>
/// <para>Order of bring-up in <see cref="RegisterAndStart"/>: create the device and its
/// <see cref="DmaDevice"/>, register, create each queue and start it on freshly allocated
/// memory, bring the device up. Any failure tears down what was built through
/// <see cref="Dispose()"/> and rethrows, so a constructor that fails leaves nothing behind.</para>
/// <para>Order of teardown in <see cref="Dispose(bool)"/>: close every socket (returning what
/// it holds), stop each queue and free its memory, end its thread, unregister the device. A
/// driver that owns more (a kernel device, a socket) overrides <see cref="Dispose(bool)"/>,
/// calls the base first and then releases its own resources; it must tolerate a construction
/// that failed part-way.</para>
/// </remarks>
public abstract class NapiDriver<TQueue> : IQueueManagementOps, IDisposable
    where TQueue : NapiPollThread
{
    private TQueue[] _queues = [];
    private QueueMemoryOptions? _memory;
    private bool _disposed;

    /// <summary>Only the drivers in this assembly derive from it.</summary>
    private protected NapiDriver()
    {
    }

    /// <summary>The device the core sees: bind providers through it. Null only while a constructor runs.</summary>
    public NetDevice Device { get; private set; } = null!;

    /// <summary>The devmem transmit queue, or null when the driver has none.</summary>
    private DevmemTxQueue? _tx;

    /// <summary>The device's IOVA space: bind dmabuf regions for this driver through it.</summary>
    public DmaDevice Dma { get; private set; } = null!;

    /// <summary>Flow steering table: open sockets here.</summary>
    public FlowSteering Flows { get; } = new();

    /// <summary>Rx queues of the device.</summary>
    public int QueueCount => _queues.Length;

    /// <summary>True once <see cref="Dispose()"/> has begun.</summary>
    private protected bool IsDisposed => _disposed;

    /// <summary>The rx queues, by index.</summary>
    private protected IReadOnlyList<TQueue> Queues => _queues;

    /// <summary>Opens a socket for a flow on this device.</summary>
    public DevmemSocket OpenSocket(FlowKey flow, int maxOutstanding = 4096) => Flows.Open(flow, maxOutstanding);

    /// <summary>Counters of queue <paramref name="queue"/>.</summary>
    public RxCounters QueueCounters(int queue) => _queues[queue].Counters;

    /// <summary>The memory queue <paramref name="queue"/> runs on now (null while it is stopped).</summary>
    public QueueMemory? QueueMemory(int queue) => _queues[queue].Memory;

    /// <summary>
    /// Creates the device, registers it, creates and starts each rx queue on freshly allocated
    /// memory, and brings the device up. On failure disposes this driver and rethrows.
    /// </summary>
    /// <param name="name">The device's name (also names its <see cref="DmaDevice"/> and poll threads).</param>
    /// <param name="queueCount">Rx queues.</param>
    /// <param name="headerDataSplit">Header-data split at start (ethtool tcp-data-split).</param>
    /// <param name="memory">How each queue's memory is built, now and at every queue restart.</param>
    /// <param name="pinCpus">CPUs to pin the poll loops to, cycled over the queues; null or empty for none.</param>
    /// <param name="createQueue">Creates queue (index, CPU to pin to or null); it must not start it.</param>
    private protected void RegisterAndStart(
        string name,
        int queueCount,
        bool headerDataSplit,
        QueueMemoryOptions memory,
        IReadOnlyList<int>? pinCpus,
        Func<int, int?, TQueue> createQueue)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(createQueue);
        _memory = memory;
        try
        {
            Dma = new DmaDevice(name + "-dma");
            Device = new NetDevice(name, queueCount, this)
            {
                TcpDataSplit = headerDataSplit ? TcpDataSplit.Enabled : TcpDataSplit.Disabled,
                DmaDevice = Dma,
            };
            _queues = new TQueue[queueCount];
            Device.Register();
            for (int i = 0; i < queueCount; i++)
            {
                int? cpu = pinCpus is { Count: > 0 } pins ? pins[i % pins.Count] : null;
                _queues[i] = createQueue(i, cpu);
                StartOnNewMemory(i);
            }

            Device.Up();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The devmem transmit queue's counters; all zero for a driver without one.</summary>
    public TxQueueStats TxStats => _tx?.Stats ?? default;

    /// <summary>
    /// Gives the device a devmem transmit queue: it becomes the device's <see cref="NetDevice.TxOps"/>
    /// (so <see cref="NetDevice.BindDmabufTx"/> accepts it), and <see cref="Dispose()"/> stops it
    /// first, cancelling what it still holds.
    /// </summary>
    private protected void AttachTx(DevmemTxQueue queue)
    {
        _tx = queue;
        Device.TxOps = queue;
    }

    /// <inheritdoc/>
    public virtual object MemAlloc(NetDevice device, int queueIndex) =>
        Common.QueueMemory.Allocate(device, queueIndex, _memory ?? throw new InvalidOperationException("The driver has not registered its device."));

    /// <inheritdoc/>
    public void MemFree(NetDevice device, object queueMemory) => ((QueueMemory)queueMemory).Free();

    /// <inheritdoc/>
    public void Start(NetDevice device, object queueMemory, int queueIndex) => _queues[queueIndex].Start((QueueMemory)queueMemory);

    /// <inheritdoc/>
    public object Stop(NetDevice device, int queueIndex) => _queues[queueIndex].Stop();

    /// <summary>
    /// The common part of the channels operation (<see cref="IRxChannelOps.SetRxChannels"/>): a
    /// driver that supports it implements <see cref="IRxChannelOps"/> by calling this and
    /// installs itself as the device's <see cref="NetDevice.ChannelOps"/>. Activates queues
    /// <paramref name="oldCount"/>..<paramref name="newCount"/>-1 in ascending order, or
    /// deactivates <paramref name="newCount"/>..<paramref name="oldCount"/>-1 in descending order,
    /// so the active queues are always a prefix. When a step fails, the queues already changed
    /// are changed back, in reverse, and the error is rethrown: the old set of queues runs again.
    /// </summary>
    private protected void ChangeRxChannels(int oldCount, int newCount)
    {
        if (newCount > oldCount)
        {
            int next = oldCount;
            try
            {
                for (; next < newCount; next++)
                {
                    ActivateQueue(next);
                }
            }
            catch
            {
                for (int i = next - 1; i >= oldCount; i--)
                {
                    DeactivateQueue(i);
                }

                throw;
            }

            return;
        }

        int remaining = oldCount;
        try
        {
            for (; remaining > newCount; remaining--)
            {
                DeactivateQueue(remaining - 1);
            }
        }
        catch
        {
            for (int i = remaining; i < oldCount; i++)
            {
                ActivateQueue(i);
            }

            throw;
        }
    }

    /// <summary>
    /// Puts stopped queue <paramref name="index"/> in service: starts it on freshly allocated
    /// memory. A driver that must also tell its hardware or the kernel overrides; on failure it
    /// must leave the queue stopped.
    /// </summary>
    protected virtual void ActivateQueue(int index) => StartOnNewMemory(index);

    /// <summary>Starts queue <paramref name="index"/> on memory allocated for it; frees that memory when the start fails.</summary>
    private void StartOnNewMemory(int index)
    {
        var mem = (QueueMemory)MemAlloc(Device, index);
        try
        {
            _queues[index].Start(mem);
        }
        catch
        {
            mem.Free();
            throw;
        }
    }

    /// <summary>
    /// Takes running queue <paramref name="index"/> out of service: stops it and frees its
    /// memory. A driver overrides to steer traffic away and deliver what the queue holds first;
    /// on failure it must leave the queue running.
    /// </summary>
    protected virtual void DeactivateQueue(int index) => _queues[index].Stop().Free();

    /// <summary>
    /// Closes every socket (returning what it holds), stops the poll loops, frees queue memory
    /// and unregisters the device.
    /// </summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>The shared teardown; a driver that owns more overrides, calls this first, then releases its own.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing || _disposed)
        {
            return;
        }

        _disposed = true;
        if (Device is not null)
        {
            Device.TxOps = null;
        }

        _tx?.Dispose();
        Flows.CloseAll();
        foreach (TQueue? q in _queues)
        {
            q?.Shutdown();
        }

        Device?.Unregister();
    }
}
