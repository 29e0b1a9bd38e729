using Xunit;
using static Netmem.Tests.PagePools.PoolTestKit;

namespace Netmem.Tests.PagePools;

public sealed class PagePoolDestroyTests
{
    [Fact]
    public void Destroy_with_nothing_in_flight_frees_at_once()
    {
        using var arena = new PageArena(4 << 20);
        var clock = new ManualTimeProvider();
        PagePool pool = Owned(arena, clock: clock);
        var pages = new NetmemRef[10];
        pool.AllocBulk(pages);
        pool.PutBulk(pages.AsSpan(0, 5));           // five in the ring
        foreach (NetmemRef p in pages.AsSpan(5))
        {
            pool.RecycleDirect(p);                  // five back in the cache
        }

        pool.Dispose();

        Assert.True(pool.IsDestroyed);
        Assert.True(pool.IsFreed);
        Assert.True(pool.Freed.IsCompletedSuccessfully);
        Assert.Equal(clock.GetUtcNow(), pool.DetachedAt);
        Assert.Equal(0, clock.ActiveTimers);
        Assert.Equal(0L, pool.GetStats().Inflight);
        Assert.Null(PagePool.FromId(pool.Id));
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Destroy_with_a_page_in_flight_defers_until_it_comes_back()
    {
        using var arena = new PageArena(4 << 20);
        var clock = new ManualTimeProvider();
        PagePool pool = Owned(arena, clock: clock);
        NetmemRef out1 = pool.AllocNetmem();
        NetmemRef back = pool.AllocNetmem();
        pool.RecycleDirect(back);

        pool.Dispose();

        Assert.True(pool.IsDestroyed);
        Assert.False(pool.IsFreed);
        Assert.False(pool.Freed.IsCompleted);
        Assert.Equal(1L, pool.Inflight);
        Assert.Equal(1, clock.ActiveTimers);
        Assert.Same(pool, PagePool.FromId(pool.Id)); // lingering pools stay visible
        Assert.Equal(1, arena.PagesOut(0));
        Assert.Throws<ObjectDisposedException>(() => pool.AllocNetmem());

        // Returning the last page completes the destroy.
        OnOtherThread(() => pool.PutNetmem(out1, -1, allowDirect: false));

        Assert.True(pool.IsFreed);
        Assert.True(pool.Freed.IsCompletedSuccessfully);
        Assert.Equal(0L, pool.Inflight);
        PagePoolStats s = pool.GetStats();
        Assert.Equal(s.HoldCount, s.ReleaseCount);
        Assert.Equal(0UL, s.RecycleRing); // released, never recycled after destroy
        Assert.Equal(0, clock.ActiveTimers);
        Assert.Null(PagePool.FromId(pool.Id));
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Lingering_pool_reports_a_stalled_shutdown_each_stalled_period()
    {
        using var arena = new PageArena(4 << 20);
        var clock = new ManualTimeProvider();
        var pool = new PagePool(new PagePoolParams
        {
            Napi = new NapiContext(),
            Arena = arena,
            TimeProvider = clock,
            DestroyRetryPeriod = TimeSpan.FromSeconds(1),
            StalledReportPeriod = TimeSpan.FromSeconds(10),
        });
        NetmemRef held = pool.AllocNetmem();
        pool.Dispose();
        Assert.Equal(0, pool.StalledShutdownReports);

        clock.Advance(TimeSpan.FromSeconds(9)); // nine retries, still inside the first period
        Assert.Equal(0, pool.StalledShutdownReports);
        Assert.False(pool.IsFreed);

        clock.Advance(TimeSpan.FromSeconds(1)); // the tenth retry is a full period after detach
        Assert.Equal(1, pool.StalledShutdownReports);

        clock.Advance(TimeSpan.FromSeconds(25));
        Assert.Equal(3, pool.StalledShutdownReports);
        Assert.False(pool.IsFreed);
        Assert.Equal(1L, pool.Inflight);

        pool.RecycleDirect(held);
        Assert.True(pool.IsFreed);
        Assert.Equal(0, clock.ActiveTimers);

        clock.Advance(TimeSpan.FromSeconds(60)); // no timer left: no more reports
        Assert.Equal(3, pool.StalledShutdownReports);
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Dispose_twice_is_a_no_op()
    {
        using var arena = new PageArena(4 << 20);
        var clock = new ManualTimeProvider();
        PagePool pool = Owned(arena, clock: clock);
        NetmemRef a = pool.AllocNetmem();
        pool.Dispose();
        DateTimeOffset? detached = pool.DetachedAt;
        clock.Advance(TimeSpan.FromSeconds(3));
        pool.Dispose();
        Assert.Equal(detached, pool.DetachedAt);
        Assert.Equal(1, clock.ActiveTimers);
        pool.RecycleDirect(a);
        Assert.True(pool.IsFreed);
    }

    [Fact]
    public void Shared_pool_disposed_while_threads_return_pages_gets_every_page_back_and_frees_itself()
    {
        const int Rounds = 40, Returners = 3, PagesEach = 96;
        for (int round = 0; round < Rounds; round++)
        {
            using var arena = new PageArena(8 << 20);
            var clock = new ManualTimeProvider();
            PagePool pool = Shared(arena, clock: clock);
            var pages = new NetmemRef[Returners * PagesEach];
            Assert.Equal(pages.Length, pool.AllocBulk(pages));
            using var go = new Barrier(Returners + 1);
            var failures = new Exception?[Returners];
            var threads = new Thread[Returners];
            for (int t = 0; t < Returners; t++)
            {
                int me = t;
                threads[t] = new Thread(() =>
                {
                    go.SignalAndWait();
                    try
                    {
                        // One by one, so some go to a CPU cache, some to the ring, and some
                        // arrive after the destroy.
                        foreach (NetmemRef r in pages.AsSpan(me * PagesEach, PagesEach))
                        {
                            pool.PutNetmem(r, -1, allowDirect: false);
                        }
                    }
                    catch (Exception e)
                    {
                        failures[me] = e;
                    }
                })
                { IsBackground = true };
                threads[t].Start();
            }

            go.SignalAndWait(TestContext.Current.CancellationToken);
            pool.Dispose();
            foreach (Thread t in threads)
            {
                Assert.True(t.Join(TimeSpan.FromSeconds(60)));
            }

            Assert.All(failures, Assert.Null);

            // A page a returner put into the ring in the instant before the destroy is drained
            // by the next retry; none may stay in a CPU cache, where no retry looks.
            clock.Advance(pool.Params.DestroyRetryPeriod);
            Assert.True(pool.IsFreed, $"round {round}: {pool.Inflight} pages stranded in the pool");
            Assert.True(pool.Freed.IsCompletedSuccessfully);
            Assert.Equal(0L, pool.Inflight);
            Assert.Equal(0, clock.ActiveTimers);
            Assert.Null(PagePool.FromId(pool.Id));
            Assert.Equal(0, arena.PagesOut(0));
            Assert.True(ArenaWhole(arena));
        }
    }
}
