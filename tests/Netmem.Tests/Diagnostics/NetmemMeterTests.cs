using System.Diagnostics.Metrics;
using Netmem.Diagnostics;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Diagnostics;

/// <summary>The Netmem meter's instruments, read with a <see cref="MeterListener"/>.</summary>
public sealed class NetmemMeterTests
{
    private static readonly string[] CounterNames =
    [
        NetmemMeter.AllocFast, NetmemMeter.AllocSlow, NetmemMeter.AllocSlowHighOrder, NetmemMeter.AllocEmpty,
        NetmemMeter.AllocRefill, NetmemMeter.AllocWaive, NetmemMeter.RecycleCached, NetmemMeter.RecycleCacheFull,
        NetmemMeter.RecycleRing, NetmemMeter.RecycleRingFull, NetmemMeter.RecycleReleasedRefcnt, NetmemMeter.Hold,
        NetmemMeter.Release,
    ];

    [Fact]
    public void Every_counter_and_inflight_is_published_with_its_instrument_kind()
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

        Assert.Equal([.. CounterNames, NetmemMeter.Inflight, NetmemMeter.InflightMemory], instruments.Select(i => i.Name));
        Assert.All(instruments.Where(i => CounterNames.Contains(i.Name)), i => Assert.IsType<ObservableCounter<long>>(i));
        Assert.IsType<ObservableUpDownCounter<long>>(instruments.Single(i => i.Name == NetmemMeter.Inflight));
        ObservableUpDownCounter<long> mem = Assert.IsType<ObservableUpDownCounter<long>>(instruments.Single(i => i.Name == NetmemMeter.InflightMemory));
        Assert.Equal("By", mem.Unit);
        pool.Dispose();
    }

    [Fact]
    public void Measurements_match_GetStats_and_are_tagged_with_pool_id_name_ifindex_and_queue()
    {
        using var arena = new PageArena(4 << 20);
        var napi = new NapiContext();
        napi.BindToCurrentThread();
        var pool = new PagePool(new PagePoolParams { Napi = napi, Queue = new RxQueue(2, napi), Ifindex = 5, Arena = arena, Name = "meter-pool" });
        NetmemRef[] held = [.. Enumerable.Range(0, 200).Select(_ => pool.AllocNetmem())];
        foreach (NetmemRef r in held.AsSpan(0, 150))
        {
            pool.RecycleDirect(r);
        }

        pool.PutBulk(held.AsSpan(150));
        NetmemRef outstanding = pool.AllocNetmem();

        Dictionary<string, (long Value, KeyValuePair<string, object?>[] Tags)> seen = Collect(pool.Id);
        PagePoolStats s = pool.GetStats();

        Assert.Equal(15, seen.Count);
        ulong[] expected =
        [
            s.AllocFast, s.AllocSlow, s.AllocSlowHighOrder, s.AllocEmpty, s.AllocRefill, s.AllocWaive, s.RecycleCached,
            s.RecycleCacheFull, s.RecycleRing, s.RecycleRingFull, s.RecycleReleasedRefcnt, s.HoldCount, s.ReleaseCount,
        ];
        Assert.Equal(expected.Select(v => (long)v), CounterNames.Select(n => seen[n].Value));
        Assert.True(s.AllocFast > 0 && s.RecycleCached > 0 && s.RecycleRing > 0, "the workout exercised cache and ring");
        Assert.Equal(pool.Inflight, seen[NetmemMeter.Inflight].Value);
        Assert.Equal(pool.Inflight * 4096, seen[NetmemMeter.InflightMemory].Value);
        Assert.All(seen.Values, m => Assert.Equal(
            [new(NetmemMeter.TagPoolId, pool.Id), new(NetmemMeter.TagPoolName, "meter-pool"), new(NetmemMeter.TagIfindex, 5), new KeyValuePair<string, object?>(NetmemMeter.TagQueue, 2)],
            m.Tags));

        pool.RecycleDirect(outstanding);
        napi.Unbind();
        pool.Dispose();
    }

    [Fact]
    public void A_freed_pool_is_no_longer_measured()
    {
        using var arena = new PageArena(4 << 20);
        var pool = new PagePool(new PagePoolParams { Arena = arena, Name = "meter-freed" });
        Assert.NotEmpty(Collect(pool.Id));
        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.Empty(Collect(pool.Id));
    }

    /// <summary>One observation of every Netmem instrument, keeping the measurements of pool <paramref name="poolId"/>.</summary>
    private static Dictionary<string, (long Value, KeyValuePair<string, object?>[] Tags)> Collect(int poolId)
    {
        var seen = new Dictionary<string, (long, KeyValuePair<string, object?>[])>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (i, l) =>
            {
                if (i.Meter.Name == NetmemMeter.MeterName)
                {
                    l.EnableMeasurementEvents(i);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            KeyValuePair<string, object?>[] t = tags.ToArray();
            if (t.Any(kv => kv.Key == NetmemMeter.TagPoolId && Equals(kv.Value, poolId)))
            {
                seen[instrument.Name] = (value, t);
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return seen;
    }
}
