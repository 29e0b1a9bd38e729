namespace Netmem.Drivers.Common;

/// <summary>What a driver's transmit step did with a packet (see <see cref="DevmemTxQueue.Xmit"/>).</summary>
internal enum TxOutcome
{
    /// <summary>The device read the payload from the region: the queue completes the packet (zero-copy).</summary>
    Sent,

    /// <summary>The driver copied the payload into its own buffer first: the queue completes the packet as copied.</summary>
    SentCopied,

    /// <summary>The packet did not go out: the queue cancels it.</summary>
    Dropped,

    /// <summary>The device still reads the payload: the driver ends the packet itself later (an AF_XDP completion ring).</summary>
    Pending,
}
