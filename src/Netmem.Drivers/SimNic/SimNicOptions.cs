namespace Netmem.Drivers.SimNic;

/// <summary>Configuration of a <see cref="SimNic"/>.</summary>
public sealed record SimNicOptions
{
    /// <summary>Rx queues.</summary>
    public int RxQueues { get; init; } = 2;

    /// <summary>Rx descriptors posted per queue.</summary>
    public int RxRingSize { get; init; } = 256;

    /// <summary>Recycle ring size of each page pool.</summary>
    public int PoolSize { get; init; } = 4096;

    /// <summary>Frames that can wait in a queue's receive FIFO before the poll loop takes them.</summary>
    public int FifoSlots { get; init; } = 1024;

    /// <summary>Largest IP packet accepted; frames add the Ethernet header (and a VLAN tag).</summary>
    public int Mtu { get; init; } = 9000;

    /// <summary>Packets the devmem transmit ring holds; a send past it fails with ENOBUFS until the device catches up.</summary>
    public int TxRingSize { get; init; } = 1024;

    /// <summary>Header-data split at start (ethtool tcp-data-split).</summary>
    public bool HeaderDataSplit { get; init; } = true;

    /// <summary>
    /// Whether the payload pool is created with <see cref="PagePoolFlags.AllowUnreadableNetmem"/>.
    /// False models a driver that cannot take unreadable memory: binding then fails with
    /// EOPNOTSUPP and rolls back.
    /// </summary>
    public bool PayloadPoolAllowsUnreadable { get; init; } = true;

    /// <summary>CPUs to pin the poll loops to, one per queue (cycled); null for no pinning.</summary>
    public IReadOnlyList<int>? PinCpus { get; init; }

    /// <summary>Arena for system pages; null for the shared arena.</summary>
    public PageArena? Arena { get; init; }

    /// <summary>Largest frame on the wire.</summary>
    public int MaxFrame => Mtu + 18;
}
