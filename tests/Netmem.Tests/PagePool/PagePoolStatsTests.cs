using Xunit;
using static Netmem.Tests.PagePools.PoolTestKit;

namespace Netmem.Tests.PagePools;

public sealed unsafe class PagePoolStatsTests
{
    [Fact]
    public void Remote_puts_from_four_threads_add_up_exactly_in_GetStats()
    {
        const int Threads = 4;
        const int PerThread = 500;
        using var arena = new PageArena(16 << 20);
        PagePool pool = Owned(arena, poolSize: 4096);
        var pages = new NetmemRef[Threads * PerThread];
        Assert.Equal(pages.Length, pool.AllocBulk(pages));
        PagePoolStats before = pool.GetStats();

        using var start = new Barrier(Threads);
        var threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = t * PerThread; i < (t + 1) * PerThread; i++)
            {
                pool.PutNetmem(pages[i], -1, allowDirect: false);
            }
        })).ToArray();
        Array.ForEach(threads, t => t.Start());
        Assert.All(threads, t => Assert.True(t.Join(TimeSpan.FromSeconds(30))));

        PagePoolStats after = pool.GetStats();
        Assert.Equal((ulong)(Threads * PerThread), after.RecycleRing - before.RecycleRing);
        Assert.Equal(Threads * PerThread, pool.RingCount);
        Assert.Equal(before with { RecycleRing = after.RecycleRing }, after); // nothing else moved
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Shared_pool_allocs_from_several_threads_add_up_exactly()
    {
        using var arena = new PageArena(16 << 20);
        PagePool pool = Shared(arena);
        const int Threads = 3, PerThread = 1000;
        Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, _ =>
        {
            for (int i = 0; i < PerThread; i++)
            {
                pool.PutNetmem(pool.AllocNetmem(), -1, allowDirect: false);
            }
        });

        PagePoolStats s = pool.GetStats();
        Assert.Equal((ulong)(Threads * PerThread), s.AllocFast + s.AllocRefill + s.AllocSlow);
        Assert.Equal((ulong)(Threads * PerThread), s.RecycleCached + s.RecycleRing + s.RecycleRingFull - s.RecycleCacheFull * (PagePool.RefillBatch - 1));
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Snapshot_sums_the_consumer_block_and_every_cpu_block_per_counter()
    {
        using var counters = new PagePoolCounters();
        const int Threads = 4, PerThread = 10_000;
        ulong* consumer = counters.Consumer;
        for (int s = 0; s < (int)Stat.Count; s++)
        {
            consumer[s] = (ulong)(s + 1); // distinct per counter, so a misplaced lane shows
        }

        var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < PerThread; i++)
            {
                counters.AddAtomic(Stat.RecycleRing);
                counters.AddAtomic(Stat.Release, 2);
            }
        })).ToArray();
        Array.ForEach(threads, t => t.Start());
        Assert.All(threads, t => Assert.True(t.Join(TimeSpan.FromSeconds(30))));

        PagePoolStats snap = counters.Snapshot();
        ulong[] expected = Enumerable.Range(1, (int)Stat.Count).Select(v => (ulong)v).ToArray();
        expected[(int)Stat.RecycleRing] += Threads * PerThread;
        expected[(int)Stat.Release] += 2 * Threads * PerThread;
        ulong[] actual =
        [
            snap.AllocFast, snap.AllocSlow, snap.AllocSlowHighOrder, snap.AllocEmpty, snap.AllocRefill, snap.AllocWaive,
            snap.RecycleCached, snap.RecycleCacheFull, snap.RecycleRing, snap.RecycleRingFull, snap.RecycleReleasedRefcnt,
            snap.HoldCount, snap.ReleaseCount,
        ];
        Assert.Equal(expected, actual);
        Assert.Equal((long)expected[(int)Stat.Hold] - (long)expected[(int)Stat.Release], counters.Inflight());
        Assert.Equal(snap.Inflight, counters.Inflight());
    }
}
