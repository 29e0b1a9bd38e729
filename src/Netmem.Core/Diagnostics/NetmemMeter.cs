using System.Diagnostics.Metrics;
using Netmem.Net;

namespace Netmem.Diagnostics;

/// <summary>
/// The <c>Netmem</c> <see cref="Meter"/>: every page pool counter, inflight and inflight memory,
/// and the number of live pools, for <c>dotnet-counters</c>, <c>netmem top</c> and OpenTelemetry.
/// </summary>
/// <remarks>
/// <para>A series is what an operator knows and what stays the same when a queue restarts and
/// its pools are replaced: the device name (<see cref="TagDevice"/>), the queue index
/// (<see cref="TagQueue"/>), the pool's role on that queue (<see cref="TagRole"/>: header,
/// payload, other) and the provider kind (<see cref="TagProvider"/>: <c>pages</c>,
/// <c>dmabuf</c>, or the provider's type). The short-lived pool id is never a tag: a service
/// that rebinds a queue every second for an hour keeps the same few series, within any
/// backend's budget. Per-pool detail stays in <c>netmem pools</c> and the EventSource's
/// introspection dump.</para>
/// <para>Counters stay monotonic across pool replacement: when a pool frees itself
/// (<see cref="PoolFreed"/>) its final counters are folded into its series, which keeps them,
/// so a replaced pool's counts are not lost. Once seen, a series is reported at every collection:
/// with no pool left it reports zero pools and nothing in flight (a backend keeps the last value
/// of a series it stops hearing about). Memory held is one entry per series ever seen.</para>
/// <para>All instruments are observable: nothing is recorded on the pool's hot paths. The
/// meter is created the first time a pool is created (<see cref="EnsureCreated"/>), so a
/// process that never makes a pool publishes nothing.</para>
/// </remarks>
public static class NetmemMeter
{
    /// <summary>The meter name to enable: <c>Netmem</c>.</summary>
    public const string MeterName = "Netmem";

    /// <summary>Tag: the device name (<c>none</c> for a pool without a queue on a device).</summary>
    public const string TagDevice = "netmem.device";

    /// <summary>Tag: the rx queue index (-1 for a pool without a queue).</summary>
    public const string TagQueue = "netmem.queue";

    /// <summary>Tag: the pool's role on its queue, <c>header</c>, <c>payload</c> or <c>other</c> (<see cref="PagePoolRole"/>).</summary>
    public const string TagRole = "netmem.pool.role";

    /// <summary>Tag: where the pool's memory comes from: <c>pages</c> (the page arena), <c>dmabuf</c> (a devmem binding), or the provider's type name.</summary>
    public const string TagProvider = "netmem.provider";

    /// <summary>The <see cref="TagDevice"/> value of a pool that feeds no device's queue.</summary>
    public const string NoDevice = "none";

    /// <summary>The <see cref="TagProvider"/> value of a pool on system pages.</summary>
    public const string ProviderPages = "pages";

    /// <summary>The <see cref="TagProvider"/> value of a pool on a dmabuf binding.</summary>
    public const string ProviderDmabuf = "dmabuf";

    /// <summary>Counter: allocations served from the alloc cache.</summary>
    public const string AllocFast = "netmem.page_pool.alloc.fast";

    /// <summary>Counter: order-0 allocations that took the slow path.</summary>
    public const string AllocSlow = "netmem.page_pool.alloc.slow";

    /// <summary>Counter: higher-order allocations that took the slow path.</summary>
    public const string AllocSlowHighOrder = "netmem.page_pool.alloc.slow_high_order";

    /// <summary>Counter: allocations that found the ring and the arena empty.</summary>
    public const string AllocEmpty = "netmem.page_pool.alloc.empty";

    /// <summary>Counter: alloc cache refills from the ring.</summary>
    public const string AllocRefill = "netmem.page_pool.alloc.refill";

    /// <summary>Counter: netmems waived at refill.</summary>
    public const string AllocWaive = "netmem.page_pool.alloc.waive";

    /// <summary>Counter: recycles into the alloc cache.</summary>
    public const string RecycleCached = "netmem.page_pool.recycle.cached";

    /// <summary>Counter: direct recycles that found the alloc cache full.</summary>
    public const string RecycleCacheFull = "netmem.page_pool.recycle.cache_full";

    /// <summary>Counter: recycles into the ring.</summary>
    public const string RecycleRing = "netmem.page_pool.recycle.ring";

    /// <summary>Counter: recycles that found the ring full.</summary>
    public const string RecycleRingFull = "netmem.page_pool.recycle.ring_full";

    /// <summary>Counter: netmems released because others still held references.</summary>
    public const string RecycleReleasedRefcnt = "netmem.page_pool.recycle.released_refcnt";

    /// <summary>Counter: netmems taken from the arena or provider.</summary>
    public const string Hold = "netmem.page_pool.hold";

    /// <summary>Counter: netmems given back to the arena or provider.</summary>
    public const string Release = "netmem.page_pool.release";

    /// <summary>Up-down counter: netmems in flight (hold minus release).</summary>
    public const string Inflight = "netmem.page_pool.inflight";

    /// <summary>Up-down counter: bytes in flight.</summary>
    public const string InflightMemory = "netmem.page_pool.inflight.memory";

    /// <summary>Up-down counter: live pools of the series (not yet destroyed; lingering ones are not counted).</summary>
    public const string Pools = "netmem.page_pool.pools";

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

    /// <summary>Guards the folded state below against a concurrent collection.</summary>
    private static readonly Lock s_lock = new();

    /// <summary>Final counters of freed pools, per series; one entry per series ever seen.</summary>
    private static readonly Dictionary<Series, PagePoolStats> s_retired = [];

    /// <summary>Tags per series, built once.</summary>
    private static readonly Dictionary<Series, KeyValuePair<string, object?>[]> s_tags = [];

    /// <summary>Freed pools whose counters are folded but which may still be registered for a moment.</summary>
    private static readonly HashSet<PagePool> s_folded = new(ReferenceEqualityComparer.Instance);

    /// <summary>Creates the meter and its instruments; runs once, the first time the type is touched.</summary>
    static NetmemMeter()
    {
        s_meter = new Meter(MeterName, typeof(NetmemMeter).Assembly.GetName().Version?.ToString());
        foreach ((string name, string description, Func<PagePoolStats, ulong> read) in Counters)
        {
            s_meter.CreateObservableCounter(name, () => Observe(s => (long)read(s.Stats)), unit: "{netmem}", description: description);
        }

        s_meter.CreateObservableUpDownCounter(Inflight, static () => Observe(static s => s.Inflight), unit: "{netmem}", description: "Netmems held by the pools or handed out: hold minus release");
        s_meter.CreateObservableUpDownCounter(InflightMemory, static () => Observe(static s => s.InflightMemory), unit: "By", description: "Bytes of memory in flight: inflight times the netmem size");
        s_meter.CreateObservableUpDownCounter(Pools, static () => Observe(static s => s.LivePools), unit: "{pool}", description: "Live page pools (created and not destroyed)");
    }

    /// <summary>The meter (created on first use).</summary>
    public static Meter Meter => s_meter;

    /// <summary>
    /// Makes sure the meter exists. Called from the <see cref="PagePool"/> constructor; costs a
    /// static-initialisation check after the first call.
    /// </summary>
    public static void EnsureCreated() => GC.KeepAlive(s_meter);

    /// <summary>The series a pool's measurements belong to.</summary>
    internal static Series SeriesOf(PagePool pool)
    {
        RxQueue? q = pool.Params.Queue;
        string provider = pool.MemoryProvider switch
        {
            null => ProviderPages,
            IDmabufIdentified => ProviderDmabuf,
            var mp => mp.GetType().Name,
        };
        return new Series(q?.Device?.Name ?? NoDevice, q?.Index ?? -1, pool.Params.Role, provider);
    }

    /// <summary>The tags of a series' measurements.</summary>
    internal static KeyValuePair<string, object?>[] TagsOf(Series series) =>
    [
        new(TagDevice, series.Device),
        new(TagQueue, series.Queue),
        new(TagRole, RoleName(series.Role)),
        new(TagProvider, series.Provider),
    ];

    /// <summary>The <see cref="TagRole"/> value of a role.</summary>
    public static string RoleName(PagePoolRole role) => role switch
    {
        PagePoolRole.Header => "header",
        PagePoolRole.Payload => "payload",
        _ => "other",
    };

    /// <summary>
    /// A pool freed itself with <paramref name="finalStats"/>: its counts move to its series.
    /// Called once per pool from its destroy path, just before it leaves the registry.
    /// </summary>
    internal static void PoolFreed(PagePool pool, PagePoolStats finalStats)
    {
        Series series = SeriesOf(pool);
        lock (s_lock)
        {
            s_retired[series] = s_retired.GetValueOrDefault(series) + finalStats;
            s_folded.Add(pool);
        }
    }

    private static List<Measurement<long>> Observe(Func<SeriesValues, long> read)
    {
        IReadOnlyList<PagePool> pools = PagePool.All;
        var values = new Dictionary<Series, SeriesValues>();
        lock (s_lock)
        {
            foreach (PagePool p in pools)
            {
                if (s_folded.Contains(p))
                {
                    continue;
                }

                Series series = SeriesOf(p);
                SeriesValues v = values.GetValueOrDefault(series);
                PagePoolStats s = p.GetStats();
                values[series] = new SeriesValues(
                    v.Stats + s,
                    v.Inflight + s.Inflight,
                    v.InflightMemory + (s.Inflight * p.NetmemSize),
                    v.LivePools + (p.DetachedAt is null ? 1 : 0));
            }

            s_folded.RemoveWhere(static p => !ReferenceEquals(PagePool.FromId(p.Id), p));

            // A series whose pools are all gone is still reported, with no pools and nothing in
            // flight: a metrics backend keeps publishing the last value it saw for a series, so
            // silence would leave it showing the last live pool forever.
            foreach (Series series in s_retired.Keys)
            {
                values.TryAdd(series, default);
            }

            var list = new List<Measurement<long>>(values.Count);
            foreach ((Series series, SeriesValues v) in values)
            {
                SeriesValues total = v with { Stats = v.Stats + s_retired.GetValueOrDefault(series) };
                if (!s_tags.TryGetValue(series, out KeyValuePair<string, object?>[]? tags))
                {
                    tags = TagsOf(series);
                    s_tags[series] = tags;
                }

                list.Add(new Measurement<long>(read(total), tags));
            }

            return list;
        }
    }

    /// <summary>What identifies a series: stable across queue restarts.</summary>
    internal readonly record struct Series(string Device, int Queue, PagePoolRole Role, string Provider);

    /// <summary>One series' values at one collection.</summary>
    private readonly record struct SeriesValues(PagePoolStats Stats, long Inflight, long InflightMemory, long LivePools);
}
