using Netmem.Native;
using Xunit;
using static Netmem.Tests.PagePools.PoolTestKit;

namespace Netmem.Tests.PagePools;

public sealed class PagePoolBulkAndParamsTests
{
    [Fact]
    public void AllocBulk_fills_the_span_with_distinct_pages_in_bulks_of_64()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        var pages = new NetmemRef[200];

        Assert.Equal(200, pool.AllocBulk(pages));

        Assert.Equal(200, pages.Distinct().Count());
        Assert.All(pages, p => Assert.Equal(pool.Id, p.PoolId));
        PagePoolStats s = pool.GetStats();
        Assert.Equal(4UL, s.AllocSlow);
        Assert.Equal(256UL, s.HoldCount);
        Assert.Equal(196UL, s.AllocFast);
        Assert.Equal(56, pool.AllocCacheCount);
        pool.PutBulk(pages);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void AllocBulk_past_the_arena_limit_returns_fewer_and_then_null()
    {
        using var arena = new PageArena(2 << 20); // 512 pages
        PagePool pool = Owned(arena);
        var pages = new NetmemRef[600];

        Assert.Equal(512, pool.AllocBulk(pages));
        Assert.True(pool.AllocNetmem().IsNull);
        Assert.True(pool.GetStats().AllocEmpty >= 2);
        pool.PutBulk(pages.AsSpan(0, 512));
        Assert.False(pool.AllocNetmem().IsNull); // recycled pages serve again
        pool.Dispose();
    }

    [Fact]
    public void PutBulk_recycles_into_the_ring_and_releases_what_does_not_fit()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena, poolSize: 64);
        var pages = new NetmemRef[100];
        pool.AllocBulk(pages);
        PagePoolStats before = pool.GetStats();

        OnOtherThread(() => pool.PutBulk(pages));

        PagePoolStats after = pool.GetStats();
        Assert.Equal(64UL, after.RecycleRing - before.RecycleRing);
        Assert.Equal(36UL, after.RecycleRingFull - before.RecycleRingFull);
        Assert.Equal(36UL, after.ReleaseCount - before.ReleaseCount);
        Assert.Equal(64, pool.RingCount);
        Assert.Equal(36, pages.Count(arena.IsFree));
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void AllocPage_returns_a_readable_page_of_the_pool()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef p = pool.AllocPage();
        Assert.True(p.IsPage);
        Assert.Equal(pool.Id, p.PoolId);
        Assert.Equal(1L, p.PoolRefCount);
        Assert.Equal(4096, p.GetPageSpan().Length);
        p.GetPageSpan()[4095] = 1;
        Assert.Equal(p, arena.FromAddress(p.PageAddress + 4095));
        pool.RecycleDirect(p);
        pool.Dispose();
    }

    [Fact]
    public void Order_3_pool_hands_out_32KiB_pages_one_per_slow_path_call()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena, order: 3);
        NetmemRef a = pool.AllocNetmem();
        NetmemRef b = pool.AllocNetmem();
        Assert.Equal(32768, pool.NetmemSize);
        Assert.Equal(32768, a.Size);
        Assert.Equal(3, a.PageOrder);
        PagePoolStats s = pool.GetStats();
        Assert.Equal(2UL, s.AllocSlowHighOrder);
        Assert.Equal(0UL, s.AllocSlow);
        Assert.Equal(2UL, s.HoldCount);
        pool.RecycleDirect(a);
        Assert.Equal(a, pool.AllocNetmem());
        pool.RecycleDirect(a);
        pool.RecycleDirect(b);
        pool.Dispose();
        Assert.True(ArenaWhole(arena, 3));
    }

    [Fact]
    public void DmaMap_pool_gives_system_pages_their_cpu_address_as_dma_address()
    {
        using var arena = new PageArena(4 << 20);
        var pool = new PagePool(new PagePoolParams { Napi = new NapiContext(), Arena = arena, Flags = PagePoolFlags.DmaMap });
        NetmemRef p = pool.AllocNetmem();
        Assert.Equal((ulong)p.PageAddress, p.DmaAddress);
        pool.RecycleDirect(p);
        pool.Dispose();
    }

    [Theory]
    [InlineData(6)]
    [InlineData(-1)]
    public void Order_out_of_range_is_refused_with_EINVAL(int order)
    {
        NetmemException e = Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams { Order = order }));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("order", e.Reason);
    }

    [Theory]
    [InlineData(PagePool.MaxPoolSize + 1)]
    [InlineData(-1)]
    public void Pool_size_out_of_range_is_refused_with_E2BIG(int size)
    {
        NetmemException e = Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams { PoolSize = size }));
        Assert.Equal(Errno.E2BIG, e.Errno);
        Assert.Equal("E2BIG", e.ErrnoName);
    }

    [Fact]
    public void DmaSyncDev_without_DmaMap_is_refused_with_EINVAL()
    {
        NetmemException e = Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams { Flags = PagePoolFlags.DmaSyncDev, MaxLen = 2048 }));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("DmaMap", e.Reason);
    }

    [Fact]
    public void DmaSyncDev_without_MaxLen_is_refused_with_EINVAL()
    {
        NetmemException e = Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams { Flags = PagePoolFlags.DmaMap | PagePoolFlags.DmaSyncDev }));
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("MaxLen", e.Reason);
    }

    [Fact]
    public void DmaSyncDev_window_past_the_page_is_refused_with_EINVAL()
    {
        NetmemException e = Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams
        {
            Flags = PagePoolFlags.DmaMap | PagePoolFlags.DmaSyncDev,
            Offset = 256,
            MaxLen = 4096,
        }));
        Assert.Equal(Errno.EINVAL, e.Errno);
    }

    [Fact]
    public void Nid_below_minus_one_is_refused_with_EINVAL()
    {
        Assert.Equal(Errno.EINVAL, Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams { Nid = -2 })).Errno);
    }

    [Fact]
    public void Non_positive_destroy_periods_are_refused_with_EINVAL()
    {
        Assert.Equal(Errno.EINVAL, Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams { DestroyRetryPeriod = TimeSpan.Zero })).Errno);
        Assert.Equal(Errno.EINVAL, Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams { StalledReportPeriod = TimeSpan.FromSeconds(-1) })).Errno);
    }

    [Fact]
    public void Refused_pools_are_finalized_without_taking_the_process_down()
    {
        // Regression: the finalizer of a pool whose constructor refused its parameters
        // dereferenced the ring it never allocated, and crashed the process from the
        // finalizer thread.
        int refused = RefuseSomePools(16);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();

        Assert.Equal(16, refused);
        using var arena = new PageArena(2 << 20);
        PagePool pool = Owned(arena);
        Assert.False(pool.AllocNetmem().IsNull);
        pool.Dispose();
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static int RefuseSomePools(int n)
    {
        int refused = 0;
        for (int i = 0; i < n; i++)
        {
            try
            {
                _ = new PagePool(new PagePoolParams { Order = 9 });
            }
            catch (NetmemException e) when (e.Errno == Errno.EINVAL)
            {
                refused++;
            }
        }

        return refused;
    }

    [Fact]
    public void Pool_size_zero_means_a_1024_entry_ring()
    {
        using var arena = new PageArena(2 << 20);
        PagePool pool = Owned(arena, poolSize: 0);
        Assert.Equal(1024, pool.RingCapacity);
        pool.Dispose();
    }
}
