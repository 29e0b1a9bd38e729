namespace Netmem.Tool.Demo;

/// <summary>What <c>netmem demo</c> measured and checked.</summary>
public record DemoResult
{
    public double Seconds { get; init; }
    public int Payload { get; init; }
    public int Queues { get; init; }
    public int Flows { get; init; }
    public long PacketsInjected { get; init; }
    public long PacketsDelivered { get; init; }
    public long PacketsReceived { get; init; }
    public long PacketsVerified { get; init; }
    public long PayloadMismatches { get; init; }
    public double PacketsPerSecond { get; init; }
    public double GbitPerSecond { get; init; }
    public IReadOnlyDictionary<string, long> DropsByReason { get; init; } = new Dictionary<string, long>();
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
    public int Rebinds { get; init; }
    public IReadOnlyList<string> Failures { get; init; } = [];
    public bool Ok => Failures.Count == 0;
}
