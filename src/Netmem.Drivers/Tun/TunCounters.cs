namespace Netmem.Drivers.Tun;

/// <summary>
/// A TUN interface's kernel counters. Seen from the kernel: <c>Tx</c> is what the stack sent into
/// the device, i.e. what our reads return; <c>Rx</c> is what our writes handed to the stack.
/// </summary>
/// <remarks>
/// The tun driver counts a transmitted packet in <see cref="TxPackets"/>/<see cref="TxBytes"/>
/// when a reader copies it out of the queue, not when the stack queues it: packets still waiting
/// in a queue are not yet counted, so after a full drain, packets read equals the TxPackets
/// delta exactly. A packet dropped because a queue's ring was full counts in
/// <see cref="TxDropped"/> instead.
/// </remarks>
public readonly record struct TunCounters(
    ulong RxBytes,
    ulong RxPackets,
    ulong RxErrors,
    ulong RxDropped,
    ulong TxBytes,
    ulong TxPackets,
    ulong TxErrors,
    ulong TxDropped)
{
    /// <summary>The counts accumulated between <paramref name="before"/> and this reading.</summary>
    public TunCounters Since(TunCounters before) => new(
        RxBytes - before.RxBytes,
        RxPackets - before.RxPackets,
        RxErrors - before.RxErrors,
        RxDropped - before.RxDropped,
        TxBytes - before.TxBytes,
        TxPackets - before.TxPackets,
        TxErrors - before.TxErrors,
        TxDropped - before.TxDropped);
}
