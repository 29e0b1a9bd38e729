namespace Netmem.Tool.TunDemo;

/// <summary>
/// What <c>netmem tun</c> measured and checked: the fields of <see cref="Demo.DemoResult"/>, plus
/// the TUN interface's own kernel counters over the run beside the driver's.
/// </summary>
public sealed record TunRunResult
{
    public double Seconds { get; init; }
    public int Payload { get; init; }
    public int Queues { get; init; }
    public int Flows { get; init; }

    /// <summary>Datagrams handed to the kernel by the senders.</summary>
    public long PacketsInjected { get; init; }

    /// <summary>Datagrams the driver delivered to sockets.</summary>
    public long PacketsDelivered { get; init; }

    /// <summary>Datagrams the consumers received.</summary>
    public long PacketsReceived { get; init; }

    /// <summary>Datagrams whose every payload byte matched what was sent.</summary>
    public long PacketsVerified { get; init; }

    public long PayloadMismatches { get; init; }
    public double PacketsPerSecond { get; init; }
    public double GbitPerSecond { get; init; }

    /// <summary>Packets read from the TUN and not delivered, by reason (router solicitations included).</summary>
    public IReadOnlyDictionary<string, long> DropsByReason { get; init; } = new Dictionary<string, long>();

    /// <summary>The sum of <see cref="DropsByReason"/>.</summary>
    public long PacketsDropped { get; init; }

    public ulong AllocFast { get; init; }
    public ulong AllocSlow { get; init; }
    public ulong AllocRefill { get; init; }
    public ulong RecycleCached { get; init; }
    public ulong RecycleRing { get; init; }
    public ulong RecycleRingFull { get; init; }
    public int Gen0Collections { get; init; }
    public int Gen1Collections { get; init; }
    public int Gen2Collections { get; init; }
    public long InflightAfterTeardown { get; init; }
    public long GenPoolOutstandingAfterTeardown { get; init; }
    public int BindingId { get; init; }

    /// <summary>The TUN interface's name inside the run's namespace.</summary>
    public string Interface { get; init; } = "";

    /// <summary>The kernel's tx_packets delta of the TUN over the run: packets the driver read.</summary>
    public ulong KernelTxPackets { get; init; }

    /// <summary>The kernel's tx_bytes delta (whole IP packets).</summary>
    public ulong KernelTxBytes { get; init; }

    /// <summary>The kernel's tx_dropped delta: packets lost to a full TUN ring, never seen by the driver.</summary>
    public ulong KernelTxDropped { get; init; }

    public IReadOnlyList<string> Failures { get; init; } = [];
    public bool Ok => Failures.Count == 0;
}
