namespace Netmem.Drivers.Tun;

/// <summary>Configuration of a <see cref="TunNic"/>.</summary>
public sealed record TunNicOptions
{
    /// <summary>Interface name; <c>%d</c> lets the kernel number it.</summary>
    public string Name { get; init; } = "nmtun%d";

    /// <summary>Rx queues; more than one opens the TUN with IFF_MULTI_QUEUE, one fd per queue.</summary>
    public int Queues { get; init; } = 1;

    /// <summary>Rx descriptors posted per queue.</summary>
    public int RxRingSize { get; init; } = 256;

    /// <summary>Packets the devmem transmit ring holds; a send past it fails with ENOBUFS until the TUN writes catch up.</summary>
    public int TxRingSize { get; init; } = 1024;

    /// <summary>Recycle ring size of each page pool.</summary>
    public int PoolSize { get; init; } = 4096;

    /// <summary>Interface MTU (at most 9000).</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>Header-data split at start.</summary>
    public bool HeaderDataSplit { get; init; } = true;

    /// <summary>Whether the payload pool may take unreadable memory (false: binding fails with EOPNOTSUPP).</summary>
    public bool PayloadPoolAllowsUnreadable { get; init; } = true;

    /// <summary>CPUs to pin the poll loops to (cycled), or null.</summary>
    public IReadOnlyList<int>? PinCpus { get; init; }

    /// <summary>Arena for system pages; null for the shared arena.</summary>
    public PageArena? Arena { get; init; }

    /// <summary>Addresses and link settings; null for the defaults with <see cref="Mtu"/>.</summary>
    public TunConfiguration? Configuration { get; init; }
}
