namespace Netmem.Drivers.Common;

/// <summary>
/// A snapshot of a driver's devmem transmit queue. Every accepted packet is completed, cancelled,
/// still queued, or held by the device: <see cref="Accepted"/> = <see cref="Completed"/> +
/// <see cref="Cancelled"/> + <see cref="Queued"/> + <see cref="Pending"/>.
/// </summary>
/// <param name="Accepted">Packets the queue took from sockets.</param>
/// <param name="Completed">Packets the device read (including <paramref name="Copied"/>).</param>
/// <param name="Copied">Of those, packets the driver copied into its own buffer first.</param>
/// <param name="Cancelled">Packets that did not go out (dropped by the driver, faulted, or queued at stop).</param>
/// <param name="Bytes">Payload bytes of the completed packets.</param>
/// <param name="Faults">Exceptions the transmit step threw and the queue caught.</param>
/// <param name="Queued">Packets waiting in the ring.</param>
/// <param name="Pending">Packets handed to the device and not yet ended (an AF_XDP tx ring).</param>
public readonly record struct TxQueueStats(long Accepted, long Completed, long Copied, long Cancelled, long Bytes, long Faults, int Queued, long Pending);
