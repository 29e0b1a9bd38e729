using System.Diagnostics.Metrics;
using Netmem.Diagnostics;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Diagnostics;

/// <summary>The Netmem meter's instruments and series, read with a <see cref="MeterListener"/>.</summary>
public sealed class NetmemMeterTests
{
    private static readonly string[] CounterNames =
    [
        NetmemMeter.AllocFast, NetmemMeter.AllocSlow, NetmemMeter.AllocSlowHighOrder, NetmemMeter.AllocEmpty,
        NetmemMeter.AllocRefill, NetmemMeter.AllocWaive, NetmemMeter.RecycleCached, NetmemMeter.RecycleCacheFull,
        NetmemMeter.RecycleRing, NetmemMeter.RecycleRingFull, NetmemMeter.RecycleReleasedRefcnt, NetmemMeter.Hold,
        NetmemMeter.Release,
    ];

    private static readonly string[] AllInstruments = [.. CounterNames, NetmemMeter.Inflight, NetmemMeter.InflightMemory, NetmemMeter.Pools];

    [Fact]
    public void Every_counter_inflight_and_the_pool_count_is_published_with_its_instrument_kind()
    {
        using var arena = new PageArena(4 << 20);
        var pool = new PagePool(new PagePoolParams { Arena = arena, Name = "meter-kinds" });
        var instruments = new List<Instrument>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (i, l) =>
            {
                if (i.Meter.Name == NetmemMeter.MeterName)
                {
                    lock (instruments)
                    {
                        instruments.Add(i);
                    }
                }
            },
        };
        listener.Start();

        Assert.Equal(AllInstruments, instruments.Select(i => i.Name));
        Assert.All(instruments.Where(i => CounterNames.Contains(i.Name)), i => Assert.IsType<ObservableCounter<long>>(i));
        Assert.IsType<ObservableUpDownCounter<long>>(instruments.Single(i => i.Name == NetmemMeter.Inflight));
        Assert.IsType<ObservableUpDownCounter<long>>(instruments.Single(i => i.Name == NetmemMeter.Pools));
        ObservableUpDownCounter<long> mem = Assert.IsType<ObservableUpDownCounter<long>>(instruments.Single(i => i.Name == NetmemMeter.InflightMemory));
        Assert.Equal("By", mem.Unit);
        pool.Dispose();
    }

    [Fact]
    public void Measurements_match_GetStats_and_are_tagged_by_device_queue_role_and_provider_never_pool_id()
    {
        using var arena = new PageArena(4 << 20);
        var device = new NetDevice("meter-tags", 3);
        var napi = new NapiContext();
        napi.BindToCurrentThread();
        var pool = new PagePool(new PagePoolParams { Napi = napi, Queue = device.RxQueues[2], Role = PagePoolRole.Payload, Arena = arena, Name = "meter-pool" });
        NetmemRef[] held = [.. Enumerable.Range(0, 200).Select(_ => pool.AllocNetmem())];
        foreach (NetmemRef r in held.AsSpan(0, 150))
        {
            pool.RecycleDirect(r);
        }

        pool.PutBulk(held.AsSpan(150));
        NetmemRef outstanding = pool.AllocNetmem();

        Dictionary<string, (long Value, KeyValuePair<string, object?>[] Tags)> seen = Collect("meter-tags");
        PagePoolStats s = pool.GetStats();

        Assert.Equal(AllInstruments.Length, seen.Count);
        ulong[] expected =
        [
            s.AllocFast, s.AllocSlow, s.AllocSlowHighOrder, s.AllocEmpty, s.AllocRefill, s.AllocWaive, s.RecycleCached,
            s.RecycleCacheFull, s.RecycleRing, s.RecycleRingFull, s.RecycleReleasedRefcnt, s.HoldCount, s.ReleaseCount,
        ];
        Assert.Equal(expected.Select(v => (long)v), CounterNames.Select(n => seen[n].Value));
        Assert.True(s.AllocFast > 0 && s.RecycleCached > 0 && s.RecycleRing > 0, "the workout exercised cache and ring");
        Assert.Equal(pool.Inflight, seen[NetmemMeter.Inflight].Value);
        Assert.Equal(pool.Inflight * 4096, seen[NetmemMeter.InflightMemory].Value);
        Assert.Equal(1, seen[NetmemMeter.Pools].Value);
        Assert.All(seen.Values, m => Assert.Equal(
            [
                new(NetmemMeter.TagDevice, "meter-tags"), new(NetmemMeter.TagQueue, 2),
                new(NetmemMeter.TagRole, "payload"), new KeyValuePair<string, object?>(NetmemMeter.TagProvider, "pages"),
            ],
            m.Tags));

        pool.RecycleDirect(outstanding);
        napi.Unbind();
        pool.Dispose();
        device.Unregister();
    }

    [Fact]
    public void A_replaced_pools_counts_stay_in_its_series_so_counters_never_go_back()
    {
        using var arena = new PageArena(4 << 20);
        var device = new NetDevice("meter-replace", 1);
        PagePool first = QueuePool(device, PagePoolRole.Header, arena);
        Workout(first, 100);
        first.Dispose();
        Assert.True(first.IsFreed);
        ulong firstFast = first.GetStats().AllocFast;

        PagePool second = QueuePool(device, PagePoolRole.Header, arena);
        Workout(second, 30);
        Dictionary<string, (long Value, KeyValuePair<string, object?>[] Tags)> seen = Collect("meter-replace");

        Assert.True(firstFast > 0);
        Assert.Equal((long)(firstFast + second.GetStats().AllocFast), seen[NetmemMeter.AllocFast].Value);
        Assert.Equal((long)(first.GetStats().HoldCount + second.GetStats().HoldCount), seen[NetmemMeter.Hold].Value);
        Assert.Equal(second.Inflight, seen[NetmemMeter.Inflight].Value);
        Assert.Equal(1, seen[NetmemMeter.Pools].Value);
        second.Dispose();
        device.Unregister();
    }

    [Fact]
    public void A_series_whose_pools_are_all_freed_reports_no_pools_nothing_in_flight_and_keeps_its_counts()
    {
        using var arena = new PageArena(4 << 20);
        var device = new NetDevice("meter-freed", 1);
        PagePool pool = QueuePool(device, PagePoolRole.Payload, arena);
        Workout(pool, 10);
        Assert.Equal(1, Collect("meter-freed")[NetmemMeter.Pools].Value);

        pool.Dispose();

        Assert.True(pool.IsFreed);
        Dictionary<string, (long Value, KeyValuePair<string, object?>[] Tags)> seen = Collect("meter-freed");
        Assert.Equal(0, seen[NetmemMeter.Pools].Value);
        Assert.Equal(0, seen[NetmemMeter.Inflight].Value);
        Assert.Equal((long)pool.GetStats().AllocFast, seen[NetmemMeter.AllocFast].Value);
        device.Unregister();
    }

    [Fact]
    public void An_hour_of_queue_restarts_once_a_second_keeps_the_same_few_series()
    {
        // A service that restarts queue 1 every second for an hour: 3600 header and payload
        // pool pairs, scraped once a minute. Every scrape and the whole hour see the same
        // 2 series (header, payload) per instrument, whatever the pool ids.
        using var arena = new PageArena(8 << 20);
        var device = new NetDevice("meter-hour", 2);
        var series = new HashSet<string>(StringComparer.Ordinal);
        var poolIds = new HashSet<int>();
        PagePool? header = null, payload = null;
        for (int second = 0; second < 3600; second++)
        {
            header?.Dispose();
            payload?.Dispose();
            header = QueuePool(device, PagePoolRole.Header, arena, queue: 1);
            payload = QueuePool(device, PagePoolRole.Payload, arena, queue: 1);
            poolIds.Add(header.Id);
            poolIds.Add(payload.Id);
            Workout(payload, 4);
            if (second % 60 == 59)
            {
                List<string> scrape = Scrape("meter-hour");
                Assert.Equal(AllInstruments.Length * 2, scrape.Count);
                series.UnionWith(scrape);
            }
        }

        Assert.Equal(7200, poolIds.Count);
        Assert.Equal(AllInstruments.Length * 2, series.Count);
        Dictionary<string, (long Value, KeyValuePair<string, object?>[] Tags)> hdr = Collect("meter-hour", "header");
        Assert.Equal(1, hdr[NetmemMeter.Pools].Value);
        header!.Dispose();
        payload!.Dispose();
        device.Unregister();
    }

    private static PagePool QueuePool(NetDevice device, PagePoolRole role, PageArena arena, int queue = 0) =>
        new(new PagePoolParams { Queue = device.RxQueues[queue], Ifindex = device.Ifindex, Role = role, Arena = arena, Name = $"{device.Name}-{role}" });

    /// <summary>Takes and returns <paramref name="n"/> netmems.</summary>
    private static void Workout(PagePool pool, int n)
    {
        NetmemRef[] held = [.. Enumerable.Range(0, n).Select(_ => pool.AllocNetmem())];
        pool.PutBulk(held);
    }

    /// <summary>Every series of device <paramref name="device"/> in one collection, as "instrument{tags}".</summary>
    private static List<string> Scrape(string device)
    {
        var seen = new List<string>();
        using MeterListener listener = Listener((instrument, value, tags) =>
        {
            if (tags.Any(kv => kv.Key == NetmemMeter.TagDevice && Equals(kv.Value, device)))
            {
                seen.Add(instrument.Name + "{" + string.Join(',', tags.Select(t => $"{t.Key}={t.Value}")) + "}");
            }
        });
        listener.RecordObservableInstruments();
        return seen;
    }

    /// <summary>One observation of every Netmem instrument, keeping the measurements of one series of <paramref name="device"/>.</summary>
    private static Dictionary<string, (long Value, KeyValuePair<string, object?>[] Tags)> Collect(string device, string? role = null)
    {
        var seen = new Dictionary<string, (long, KeyValuePair<string, object?>[])>();
        using MeterListener listener = Listener((instrument, value, tags) =>
        {
            if (tags.Any(kv => kv.Key == NetmemMeter.TagDevice && Equals(kv.Value, device))
                && (role is null || tags.Any(kv => kv.Key == NetmemMeter.TagRole && Equals(kv.Value, role))))
            {
                Assert.False(seen.ContainsKey(instrument.Name), $"{instrument.Name} measured twice for one series");
                seen[instrument.Name] = (value, tags);
            }
        });
        listener.RecordObservableInstruments();
        return seen;
    }

    private static MeterListener Listener(Action<Instrument, long, KeyValuePair<string, object?>[]> onMeasurement)
    {
        var listener = new MeterListener
        {
            InstrumentPublished = (i, l) =>
            {
                if (i.Meter.Name == NetmemMeter.MeterName)
                {
                    l.EnableMeasurementEvents(i);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => onMeasurement(instrument, value, tags.ToArray()));
        listener.Start();
        return listener;
    }
}
