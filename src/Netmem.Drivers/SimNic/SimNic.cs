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
public sealed class SimNic : NapiDriver<SimNicQueue>, IRxChannelOps
{
    /// <summary>How long deactivating a queue waits for its FIFO to drain.</summary>
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(30);

    private readonly SimNicOptions _options;

    /// <summary>The devmem transmit queue.</summary>
    private readonly SimNicTxQueue _tx = null!;

    /// <summary>Queues taking traffic: frames injected for a queue at or past it go to an active one.</summary>
    private volatile int _activeQueues;

    /// <summary>
    /// Creates the device <paramref name="name"/>, registers it, starts one poll loop per rx queue on
    /// freshly allocated memory and brings the device up. On failure nothing is left behind.
    /// </summary>
    /// <param name="name">The device's name (also names its DMA device and poll threads).</param>
    /// <param name="options">Queues, rings, pools, MTU, header-data split; null for the defaults.</param>
    /// <exception cref="ArgumentOutOfRangeException"><see cref="SimNicOptions.RxQueues"/> is below 1.</exception>
    public SimNic(string name, SimNicOptions? options = null)
    {
        _options = options ?? new SimNicOptions();
        if (_options.RxQueues < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.RxQueues, "A SimNic needs at least one rx queue.");
        }

        RegisterAndStart(
            name,
            _options.RxQueues,
            _options.HeaderDataSplit,
            new QueueMemoryOptions(_options.RxRingSize, _options.PoolSize, _options.PayloadPoolAllowsUnreadable, _options.MaxFrame, _options.Arena),
            _options.PinCpus,
            (i, cpu) => new SimNicQueue(this, i, _options.FifoSlots, _options.Mtu, _options.MaxFrame, cpu));
        _activeQueues = _options.RxQueues;
        Device.ChannelOps = this;
        _tx = new SimNicTxQueue(this, _options.TxRingSize) { Wire = (this, 0) };
        AttachTx(_tx);
    }

    /// <summary>The options the NIC was created with.</summary>
    public SimNicOptions Options => _options;

    /// <summary>Transmitted frames the wire lost because the receiving queue's FIFO was full (their sends still completed).</summary>
    public long TxWireDrops => _tx.WireDrops;

    /// <summary>
    /// Connects the transmit side to rx queue <paramref name="queue"/> of <paramref name="target"/>
    /// (this NIC or another): every frame this NIC sends from a TX binding is injected there, as
    /// a cable would carry it. At creation the wire loops to this NIC's queue 0.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="queue"/> is not a queue of <paramref name="target"/>.</exception>
    public void LoopTxTo(SimNic target, int queue)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)queue, (uint)target.QueueCount, nameof(queue));
        _tx.Wire = (target, queue);
    }

    /// <summary>FIFO slots free for <see cref="Inject"/> on queue <paramref name="queue"/>.</summary>
    public int FreeFifoSlots(int queue) => Queues[queue].FreeSlots;

    /// <summary>Frames waiting in queue <paramref name="queue"/>'s FIFO.</summary>
    public int Pending(int queue) => Queues[queue].Pending;

    /// <summary>
    /// Puts a frame on the wire for queue <paramref name="queue"/>. False when the queue's FIFO
    /// is full (counted as <see cref="DropReason.RxFifoFull"/>); every accepted frame is later
    /// delivered or counted as dropped. A frame for a queue that is not active (see
    /// <see cref="NetDevice.SetRxChannels"/>) goes to active queue <c>queue % active</c>, as the
    /// NIC's RSS table spreads traffic over the active queues only.
    /// </summary>
    public bool Inject(int queue, ReadOnlySpan<byte> frame)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if ((uint)queue >= (uint)QueueCount)
        {
            throw new ArgumentOutOfRangeException(nameof(queue), queue, $"{Device.Name} has {QueueCount} rx queues.");
        }

        while (true)
        {
            int active = _activeQueues;
            InjectResult r = Queues[queue < active ? queue : queue % active].Inject(frame);
            if (r != InjectResult.Inactive)
            {
                return r == InjectResult.Accepted;
            }

            // The queue was deactivated after the count was read; the count is already lower.
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Growing starts each new queue on fresh memory before steering traffic to it. Shrinking
    /// steers traffic away from each queue first, then the queue delivers what its FIFO holds
    /// before it stops and its memory is freed: no frame is lost. A failure restores the old set
    /// of queues.
    /// </remarks>
    public void SetRxChannels(NetDevice device, int oldCount, int newCount) => ChangeRxChannels(oldCount, newCount);

    /// <summary>Starts queue <paramref name="index"/>, then lets injection reach it (queues activate in ascending order).</summary>
    protected override void ActivateQueue(int index)
    {
        Queues[index].Activate((QueueMemory)MemAlloc(Device, index));
        _activeQueues = index + 1;
    }

    /// <summary>Steers injection away from queue <paramref name="index"/>, drains and stops it (queues deactivate in descending order).</summary>
    protected override void DeactivateQueue(int index)
    {
        _activeQueues = index;
        QueueMemory mem;
        try
        {
            mem = Queues[index].Deactivate(DrainTimeout);
        }
        catch
        {
            // Deactivate left the queue accepting: steer to it again.
            _activeQueues = index + 1;
            throw;
        }

        mem.Free();
    }

    /// <summary>Waits until every queue's FIFO is empty (bounded), so counters are final.</summary>
    public bool WaitIdle(TimeSpan timeout)
    {
        DateTime end = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < end)
        {
            // A burst the poll loop has taken off the FIFO but not yet delivered is covered by IsIdle.
            if (Queues.All(q => q.IsIdle))
            {
                return true;
            }

            Thread.Sleep(1);
        }

        return false;
    }

    /// <summary>Names the NIC and its device for logs.</summary>
    public override string ToString() => $"SimNic {Device}";
}
