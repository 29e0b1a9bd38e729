using Xunit;
using static Netmem.Tests.PagePools.PoolTestKit;

namespace Netmem.Tests.PagePools;

public sealed class PagePoolRecycleTests
{
    [Fact]
    public void First_alloc_takes_a_bulk_of_64_from_the_arena_through_the_slow_path()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem();

        PagePoolStats s = pool.GetStats();
        Assert.True(a.IsPage);
        Assert.Equal(pool.Id, a.PoolId);
        Assert.Equal(1L, a.PoolRefCount);
        Assert.Equal(1UL, s.AllocEmpty);
        Assert.Equal(1UL, s.AllocSlow);
        Assert.Equal(0UL, s.AllocFast);
        Assert.Equal(64UL, s.HoldCount);
        Assert.Equal(63, pool.AllocCacheCount);
        Assert.Equal(64, arena.PagesOut(0));
        pool.RecycleDirect(a);
        pool.Dispose();
    }

    [Fact]
    public void Alloc_then_direct_recycle_reuses_the_same_page_through_the_cache()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem();
        PagePoolStats before = pool.GetStats();

        pool.RecycleDirect(a);
        Assert.Equal(64, pool.AllocCacheCount);
        NetmemRef b = pool.AllocNetmem();

        PagePoolStats after = pool.GetStats();
        Assert.Equal(a, b);
        Assert.Equal(before.AllocFast + 1, after.AllocFast);
        Assert.Equal(before.RecycleCached + 1, after.RecycleCached);
        Assert.Equal(before.AllocSlow, after.AllocSlow);
        Assert.Equal(before.HoldCount, after.HoldCount); // no new page from the arena
        Assert.Equal(0UL, after.RecycleRing);
        pool.RecycleDirect(b);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Direct_recycle_into_a_full_cache_goes_to_the_ring()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        var pages = new NetmemRef[PagePool.AllocCacheSize + 1];
        Assert.Equal(pages.Length, pool.AllocBulk(pages));
        foreach (NetmemRef p in pages)
        {
            pool.RecycleDirect(p);
        }

        PagePoolStats s = pool.GetStats();
        Assert.Equal(PagePool.AllocCacheSize, pool.AllocCacheCount);
        Assert.True(s.RecycleCacheFull >= 1);
        Assert.Equal(s.RecycleCacheFull, s.RecycleRing);
        Assert.Equal((int)s.RecycleRing, pool.RingCount);
        Assert.Equal((ulong)pages.Length, s.RecycleCached + s.RecycleRing);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Put_from_another_thread_goes_through_the_ring_and_comes_back_on_refill()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem(); // slow path: 63 more wait in the cache

        OnOtherThread(() => pool.PutNetmem(a, -1, allowDirect: false));

        PagePoolStats mid = pool.GetStats();
        Assert.Equal(1UL, mid.RecycleRing);
        Assert.Equal(0UL, mid.RecycleCached);
        Assert.Equal(1, pool.RingCount);

        // Empty the cache; the next alloc refills from the ring and hands out the remote page.
        var rest = new NetmemRef[63];
        Assert.Equal(63, pool.AllocBulk(rest));
        Assert.DoesNotContain(a, rest);
        Assert.Equal(0, pool.AllocCacheCount);
        NetmemRef back = pool.AllocNetmem();

        PagePoolStats after = pool.GetStats();
        Assert.Equal(a, back);
        Assert.Equal(1UL, after.AllocRefill);
        Assert.Equal(63UL, after.AllocFast);
        Assert.Equal(1UL, after.AllocSlow);
        Assert.Equal(64UL, after.HoldCount);
        Assert.Equal(0, pool.RingCount);
        Assert.Equal(pool.Id, back.PoolId);

        pool.PutBulk(rest);
        pool.RecycleDirect(back);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Put_into_a_full_ring_releases_the_page_to_the_arena()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena, poolSize: 2);
        Assert.Equal(2, pool.RingCapacity);
        NetmemRef a = pool.AllocNetmem(), b = pool.AllocNetmem(), c = pool.AllocNetmem();
        int freeBefore = arena.FreePages(0);

        OnOtherThread(() =>
        {
            pool.PutNetmem(a, -1, allowDirect: false);
            pool.PutNetmem(b, -1, allowDirect: false);
        });
        Assert.Equal(2, pool.RingCount);
        Assert.False(arena.IsFree(c));
        PagePoolStats before = pool.GetStats();

        OnOtherThread(() => pool.PutNetmem(c, -1, allowDirect: false));

        PagePoolStats after = pool.GetStats();
        Assert.Equal(before.RecycleRingFull + 1, after.RecycleRingFull);
        Assert.Equal(before.ReleaseCount + 1, after.ReleaseCount);
        Assert.Equal(before.RecycleRing, after.RecycleRing);
        Assert.Equal(before.Inflight - 1, after.Inflight);
        Assert.True(arena.IsFree(c));
        Assert.Equal(freeBefore + 1, arena.FreePages(0));
        Assert.Equal(0, c.PoolId);
        Assert.Equal(2, pool.RingCount);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Page_with_an_extra_page_reference_is_released_not_recycled()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem();
        PageArena.GetPage(a);

        pool.RecycleDirect(a);

        PagePoolStats s = pool.GetStats();
        Assert.Equal(1UL, s.RecycleReleasedRefcnt);
        Assert.Equal(0UL, s.RecycleCached);
        Assert.Equal(1UL, s.ReleaseCount);
        Assert.Equal(0, a.PoolId);
        Assert.False(arena.IsFree(a)); // the other holder still has it
        PageArena.PutPage(a);
        Assert.True(arena.IsFree(a));
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Netmem_held_by_two_pool_references_recycles_after_the_second_put()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem();
        pool.GetNetmemReference(a);
        Assert.Equal(2L, a.PoolRefCount);

        pool.RecycleDirect(a);
        Assert.Equal(0UL, pool.GetStats().RecycleCached);
        Assert.Equal(1L, a.PoolRefCount);

        pool.RecycleDirect(a);
        Assert.Equal(1UL, pool.GetStats().RecycleCached);
        Assert.Equal(a, pool.AllocNetmem());
        pool.RecycleDirect(a);
        pool.Dispose();
    }
}
