using System.Diagnostics.Metrics;

namespace Netmem.Diagnostics;

/// <summary>
/// The <c>Netmem</c> <see cref="Meter"/>: every page pool counter and the pool's inflight count
/// and memory, per pool, for <c>dotnet-counters</c>, <c>netmem top</c> and OpenTelemetry.
/// </summary>
/// <remarks>
/// All instruments are observable: nothing is recorded on the pool's hot paths. When a listener
/// collects (a <see cref="MeterListener"/>, the <c>System.Diagnostics.Metrics</c> EventSource
/// behind dotnet-counters, an OpenTelemetry reader), each instrument's callback enumerates
/// <see cref="PagePool.All"/> at that moment and reports one measurement per pool, tagged with
/// <see cref="TagPoolId"/>, <see cref="TagPoolName"/>, <see cref="TagIfindex"/> and
/// <see cref="TagQueue"/>. The meter is created the first time a pool is created
/// (<see cref="EnsureCreated"/>), so a process that never makes a pool publishes nothing.
/// </remarks>
public static class NetmemMeter
{
    /// <summary>The meter name to enable: <c>Netmem</c>.</summary>
    public const string MeterName = "Netmem";

    public const string TagPoolId = "pool.id";
    public const string TagPoolName = "pool.name";
    public const string TagIfindex = "ifindex";
    public const string TagQueue = "queue";

    public const string AllocFast = "netmem.page_pool.alloc.fast";
    public const string AllocSlow = "netmem.page_pool.alloc.slow";
    public const string AllocSlowHighOrder = "netmem.page_pool.alloc.slow_high_order";
    public const string AllocEmpty = "netmem.page_pool.alloc.empty";
    public const string AllocRefill = "netmem.page_pool.alloc.refill";
    public const string AllocWaive = "netmem.page_pool.alloc.waive";
    public const string RecycleCached = "netmem.page_pool.recycle.cached";
    public const string RecycleCacheFull = "netmem.page_pool.recycle.cache_full";
    public const string RecycleRing = "netmem.page_pool.recycle.ring";
    public const string RecycleRingFull = "netmem.page_pool.recycle.ring_full";
    public const string RecycleReleasedRefcnt = "netmem.page_pool.recycle.released_refcnt";
    public const string Hold = "netmem.page_pool.hold";
    public const string Release = "netmem.page_pool.release";
    public const string Inflight = "netmem.page_pool.inflight";
    public const string InflightMemory = "netmem.page_pool.inflight.memory";

    /// <summary>Every counter instrument with the stats field it reports, in kernel order.</summary>
    internal static readonly (string Name, string Description, Func<PagePoolStats, ulong> Read)[] Counters =
    [
        (AllocFast, "Allocations served from the alloc cache", static s => s.AllocFast),
        (AllocSlow, "Order-0 allocations that took the slow path", static s => s.AllocSlow),
        (AllocSlowHighOrder, "Higher-order allocations that took the slow path", static s => s.AllocSlowHighOrder),
        (AllocEmpty, "Allocations that found the ring and the arena empty", static s => s.AllocEmpty),
        (AllocRefill, "Alloc cache refills from the ring", static s => s.AllocRefill),
        (AllocWaive, "Netmems waived at refill (wrong NUMA node)", static s => s.AllocWaive),
        (RecycleCached, "Recycles into the alloc cache", static s => s.RecycleCached),
        (RecycleCacheFull, "Direct recycles that found the alloc cache full", static s => s.RecycleCacheFull),
        (RecycleRing, "Recycles into the ring", static s => s.RecycleRing),
        (RecycleRingFull, "Recycles that found the ring full and released the netmem", static s => s.RecycleRingFull),
        (RecycleReleasedRefcnt, "Netmems released because others still held references", static s => s.RecycleReleasedRefcnt),
        (Hold, "Netmems taken from the arena or provider", static s => s.HoldCount),
        (Release, "Netmems given back to the arena or provider", static s => s.ReleaseCount),
    ];

    private static readonly Meter s_meter;

    /// <summary>Creates the meter and its instruments; runs once, the first time the type is touched.</summary>
    static NetmemMeter()
    {
        s_meter = new Meter(MeterName, typeof(NetmemMeter).Assembly.GetName().Version?.ToString());
        foreach ((string name, string description, Func<PagePoolStats, ulong> read) in Counters)
        {
            s_meter.CreateObservableCounter(name, () => ObserveStats(read), unit: "{netmem}", description: description);
        }

        s_meter.CreateObservableUpDownCounter(Inflight, static () => ObservePools(static p => p.Inflight), unit: "{netmem}", description: "Netmems held by the pool or handed out: hold minus release");
        s_meter.CreateObservableUpDownCounter(InflightMemory, static () => ObservePools(static p => p.Inflight * p.NetmemSize), unit: "By", description: "Bytes of memory in flight: inflight times the netmem size");
    }

    /// <summary>The meter (created on first use).</summary>
    public static Meter Meter => s_meter;

    /// <summary>
    /// Makes sure the meter exists. Called from the <see cref="PagePool"/> constructor; costs a
    /// static-initialisation check after the first call.
    /// </summary>
    public static void EnsureCreated() => GC.KeepAlive(s_meter);

    private static List<Measurement<long>> ObserveStats(Func<PagePoolStats, ulong> read) =>
        ObservePools(p => (long)read(p.GetStats()));

    private static List<Measurement<long>> ObservePools(Func<PagePool, long> read)
    {
        IReadOnlyList<PagePool> pools = PagePool.All;
        List<Measurement<long>> list = new(pools.Count);
        foreach (PagePool p in pools)
        {
            list.Add(new Measurement<long>(read(p), TagsOf(p)));
        }

        return list;
    }

    /// <summary>The tags of one pool's measurements.</summary>
    internal static KeyValuePair<string, object?>[] TagsOf(PagePool pool) =>
    [
        new(TagPoolId, pool.Id),
        new(TagPoolName, pool.Name),
        new(TagIfindex, pool.Params.Ifindex),
        new(TagQueue, pool.Params.Queue?.Index ?? -1),
    ];
}
