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
public sealed class SimNic : NapiDriver<SimNicQueue>
{
    private readonly SimNicOptions _options;

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
    }

    public SimNicOptions Options => _options;

    /// <summary>FIFO slots free for <see cref="Inject"/> on queue <paramref name="queue"/>.</summary>
    public int FreeFifoSlots(int queue) => Queues[queue].FreeSlots;

    /// <summary>Frames waiting in queue <paramref name="queue"/>'s FIFO.</summary>
    public int Pending(int queue) => Queues[queue].Pending;

    /// <summary>
    /// Puts a frame on the wire for queue <paramref name="queue"/>. False when the queue's FIFO
    /// is full (counted as <see cref="DropReason.RxFifoFull"/>); every accepted frame is later
    /// delivered or counted as dropped.
    /// </summary>
    public bool Inject(int queue, ReadOnlySpan<byte> frame)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if ((uint)queue >= (uint)QueueCount)
        {
            throw new ArgumentOutOfRangeException(nameof(queue), queue, $"{Device.Name} has {QueueCount} rx queues.");
        }

        return Queues[queue].Inject(frame);
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

    public override string ToString() => $"SimNic {Device}";
}
