using Netmem;

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

    /// <summary>Sets the page-pool counters above from one snapshot (slow allocations of any order together).</summary>
    internal PagePoolStats PoolCounters
    {
        init
        {
            AllocFast = value.AllocFast;
            AllocSlow = value.AllocSlow + value.AllocSlowHighOrder;
            AllocRefill = value.AllocRefill;
            RecycleCached = value.RecycleCached;
            RecycleRing = value.RecycleRing;
            RecycleRingFull = value.RecycleRingFull;
        }
    }

    /// <summary>Sets the three collection counts above.</summary>
    internal GcCollections Collections
    {
        init
        {
            Gen0Collections = value.Gen0;
            Gen1Collections = value.Gen1;
            Gen2Collections = value.Gen2;
        }
    }
    public bool Ok => Failures.Count == 0;
}
