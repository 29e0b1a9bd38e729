using Netmem.Native;
using Xunit;
using static Netmem.Tests.PagePools.PoolTestKit;

namespace Netmem.Tests.PagePools;

public sealed class PagePoolMisuseTests
{
    [Fact]
    public void Put_of_a_ref_from_another_pool_raises_ForeignPool_and_changes_nothing()
    {
        using var arena = new PageArena(4 << 20);
        PagePool mine = Owned(arena, name: "mine");
        PagePool other = Owned(arena, name: "other");
        NetmemRef own = mine.AllocNetmem();
        NetmemRef foreign = other.AllocNetmem();
        PagePoolStats mineBefore = mine.GetStats(), otherBefore = other.GetStats();

        PagePoolMisuseException e = Assert.Throws<PagePoolMisuseException>(() => mine.PutNetmem(foreign, -1, allowDirect: true));

        Assert.Equal(PagePoolMisuse.ForeignPool, e.Misuse);
        Assert.Equal("mine", e.PoolName);
        Assert.Equal(foreign, e.Netmem);
        Assert.Contains($"page pool {other.Id}", e.Message);
        Assert.Equal(mineBefore, mine.GetStats());
        Assert.Equal(otherBefore, other.GetStats());
        Assert.Equal(other.Id, foreign.PoolId);

        // Both pools still work, and the foreign page goes home normally.
        other.RecycleDirect(foreign);
        mine.RecycleDirect(own);
        Assert.Equal(own, mine.AllocNetmem());
        mine.RecycleDirect(own);
        mine.Dispose();
        other.Dispose();
        Assert.True(mine.IsFreed && other.IsFreed);
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Second_direct_put_raises_DoublePut_and_the_page_sits_in_the_cache_once()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem();
        pool.RecycleDirect(a);
        PagePoolStats before = pool.GetStats();
        int cached = pool.AllocCacheCount;

        PagePoolMisuseException e = Assert.Throws<PagePoolMisuseException>(() => pool.RecycleDirect(a));

        Assert.Equal(PagePoolMisuse.DoublePut, e.Misuse);
        Assert.Equal(a, e.Netmem);
        Assert.Contains("double put", e.Message);
        Assert.Equal(before, pool.GetStats());
        Assert.Equal(cached, pool.AllocCacheCount);

        // Everything in the cache is distinct and the page is there exactly once.
        var all = new NetmemRef[cached];
        Assert.Equal(cached, pool.AllocBulk(all));
        Assert.Equal(cached, all.Distinct().Count());
        Assert.Single(all, r => r == a);
        Assert.Equal(before.HoldCount, pool.GetStats().HoldCount);
        pool.PutBulk(all);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Second_remote_put_raises_DoublePut_and_the_ring_holds_the_page_once()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem();
        OnOtherThread(() => pool.PutNetmem(a, -1, allowDirect: false));
        PagePoolStats before = pool.GetStats();

        PagePoolMisuseException? e = null;
        OnOtherThread(() => e = Assert.Throws<PagePoolMisuseException>(() => pool.PutNetmem(a, -1, allowDirect: false)));

        Assert.Equal(PagePoolMisuse.DoublePut, e!.Misuse);
        Assert.Equal(before, pool.GetStats());
        Assert.Equal(1, pool.RingCount);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Put_after_a_ring_full_release_raises_PutAfterZero_and_frees_nothing_twice()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena, poolSize: 2);
        NetmemRef a = pool.AllocNetmem(), b = pool.AllocNetmem(), c = pool.AllocNetmem();
        pool.PutBulk([a, b]);
        pool.PutNetmem(c, -1, allowDirect: false); // ring full: c goes back to the arena
        Assert.True(arena.IsFree(c));
        PagePoolStats before = pool.GetStats();
        int free = arena.FreePages(0);

        PagePoolMisuseException e = Assert.Throws<PagePoolMisuseException>(() => pool.PutNetmem(c, -1, allowDirect: false));

        Assert.Equal(PagePoolMisuse.PutAfterZero, e.Misuse);
        Assert.Contains("reached zero", e.Message);
        Assert.Equal(before, pool.GetStats());
        Assert.Equal(free, arena.FreePages(0));
        Assert.Equal(2, pool.RingCount);

        NetmemRef next = pool.AllocNetmem(); // a later alloc still works
        Assert.False(next.IsNull);
        pool.RecycleDirect(next);
        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Put_after_destroy_released_the_page_raises_PutAfterZero()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena, clock: new ManualTimeProvider());
        NetmemRef a = pool.AllocNetmem();
        pool.Dispose();
        pool.PutNetmem(a, -1, allowDirect: false);
        Assert.True(pool.IsFreed);
        PagePoolStats final = pool.GetStats();

        PagePoolMisuseException e = Assert.Throws<PagePoolMisuseException>(() => pool.PutNetmem(a, -1, allowDirect: false));

        Assert.Equal(PagePoolMisuse.PutAfterZero, e.Misuse);
        Assert.Equal(final, pool.GetStats());
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Put_of_null_raises_NullRef()
    {
        using var arena = new PageArena(2 << 20);
        PagePool pool = Owned(arena);
        PagePoolMisuseException e = Assert.Throws<PagePoolMisuseException>(() => pool.RecycleDirect(NetmemRef.Null));
        Assert.Equal(PagePoolMisuse.NullRef, e.Misuse);
        Assert.Equal(Native.Errno.EINVAL, e.Errno);
        Assert.Equal(0UL, pool.GetStats().HoldCount);
        pool.Dispose();
    }

    [Fact]
    public void PutBulk_with_one_bad_ref_puts_none_of_them()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem(), b = pool.AllocNetmem(), c = pool.AllocNetmem();
        pool.RecycleDirect(c);
        PagePoolStats before = pool.GetStats();

        PagePoolMisuseException e = Assert.Throws<PagePoolMisuseException>(() => pool.PutBulk([a, b, c]));

        Assert.Equal(PagePoolMisuse.DoublePut, e.Misuse);
        Assert.Equal(c, e.Netmem);
        Assert.Equal(before, pool.GetStats());
        Assert.Equal(0, pool.RingCount);
        pool.PutBulk([a, b]); // they were still in use, so putting them now is fine
        Assert.Equal(2, pool.RingCount);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void PutNetmemAny_finds_the_pool_from_the_descriptor()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem();
        PagePool.PutNetmemAny(a);
        Assert.Equal(1UL, pool.GetStats().RecycleRing);
        Assert.Equal(PagePoolMisuse.DoublePut, Assert.Throws<PagePoolMisuseException>(() => PagePool.PutNetmemAny(a)).Misuse);
        Assert.Equal(PagePoolMisuse.NullRef, Assert.Throws<PagePoolMisuseException>(() => PagePool.PutNetmemAny(NetmemRef.Null)).Misuse);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void PutBulk_with_the_same_ref_twice_raises_DoublePut_naming_pool_and_ref_and_changes_nothing()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena, name: "bulk");
        NetmemRef a = pool.AllocNetmem(), b = pool.AllocNetmem(), c = pool.AllocNetmem();
        PagePoolStats before = pool.GetStats();
        long inflight = pool.Inflight;

        PagePoolMisuseException e = Assert.Throws<PagePoolMisuseException>(() => pool.PutBulk([a, b, a, c]));

        Assert.Equal(PagePoolMisuse.DoublePut, e.Misuse);
        Assert.Equal("bulk", e.PoolName);
        Assert.Equal(a, e.Netmem);
        Assert.Contains("double put", e.Message);
        Assert.Contains($"page_pool {pool.Id} 'bulk'", e.Message);
        Assert.Contains(a.ToString(), e.Message);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(before, pool.GetStats());
        Assert.Equal(inflight, pool.Inflight);
        Assert.Equal(0, pool.RingCount);
        Assert.All(new[] { a, b, c }, r => Assert.Equal(1L, r.PoolRefCount));

        // Nothing was claimed: each ref can still be put once, and the ring then holds each once.
        pool.PutBulk([a, b, c]);
        Assert.Equal(3, pool.RingCount);
        AssertPoolHandsOutDistinct(pool);
        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void PutBulk_with_a_ref_already_put_raises_DoublePut_and_changes_nothing()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena, name: "bulk");
        NetmemRef a = pool.AllocNetmem(), b = pool.AllocNetmem(), c = pool.AllocNetmem();
        OnOtherThread(() => pool.PutNetmem(a, -1, allowDirect: false));
        PagePoolStats before = pool.GetStats();
        long inflight = pool.Inflight;

        PagePoolMisuseException? e = null;
        OnOtherThread(() => e = Assert.Throws<PagePoolMisuseException>(() => pool.PutBulk([b, a, c])));

        Assert.Equal(PagePoolMisuse.DoublePut, e!.Misuse);
        Assert.Equal("bulk", e.PoolName);
        Assert.Equal(a, e.Netmem);
        Assert.Equal(before, pool.GetStats());
        Assert.Equal(inflight, pool.Inflight);
        Assert.Equal(1, pool.RingCount);

        // b, ahead of the bad ref in the call, was given back: it is still in flight once.
        OnOtherThread(() => pool.PutBulk([b, c]));
        Assert.Equal(3, pool.RingCount);
        AssertPoolHandsOutDistinct(pool);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void PutBulk_giving_a_ref_more_times_than_it_is_held_undoes_the_references_it_dropped()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocNetmem(), b = pool.AllocNetmem();
        pool.GetNetmemReference(a); // two holders
        PagePoolStats before = pool.GetStats();

        PagePoolMisuseException e = Assert.Throws<PagePoolMisuseException>(() => pool.PutBulk([a, b, a, a]));

        Assert.Equal(PagePoolMisuse.DoublePut, e.Misuse);
        Assert.Equal(a, e.Netmem);
        Assert.Equal(2L, a.PoolRefCount);
        Assert.Equal(1L, b.PoolRefCount);
        Assert.Equal(before, pool.GetStats());
        Assert.Equal(0, pool.RingCount);

        // Both holders of a, and b's one, may put: a and b each reach the ring once.
        pool.PutBulk([a, b, a]);
        Assert.Equal(2, pool.RingCount);
        AssertPoolHandsOutDistinct(pool);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void PutBulk_with_a_foreign_ref_after_good_ones_raises_ForeignPool_and_changes_neither_pool()
    {
        using var arena = new PageArena(4 << 20);
        PagePool mine = Owned(arena, name: "mine");
        PagePool other = Owned(arena, name: "other");
        NetmemRef a = mine.AllocNetmem(), foreign = other.AllocNetmem();
        PagePoolStats mineBefore = mine.GetStats(), otherBefore = other.GetStats();

        PagePoolMisuseException e = Assert.Throws<PagePoolMisuseException>(() => mine.PutBulk([a, foreign]));

        Assert.Equal(PagePoolMisuse.ForeignPool, e.Misuse);
        Assert.Equal(foreign, e.Netmem);
        Assert.Equal(mineBefore, mine.GetStats());
        Assert.Equal(otherBefore, other.GetStats());
        Assert.Equal(0, mine.RingCount);
        mine.PutBulk([a]);
        other.PutBulk([foreign]);
        Assert.Equal(1, mine.RingCount);
        mine.Dispose();
        other.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    /// <summary>Takes everything the pool holds (cache and ring) and checks that no page comes out twice, then puts it all back.</summary>
    private static void AssertPoolHandsOutDistinct(PagePool pool)
    {
        int parked = pool.AllocCacheCount + pool.RingCount;
        ulong hold = pool.GetStats().HoldCount;
        var all = new NetmemRef[parked];
        Assert.Equal(parked, pool.AllocBulk(all));
        Assert.Equal(hold, pool.GetStats().HoldCount); // all of it came from the cache and ring
        Assert.Equal(parked, all.Distinct().Count());
        pool.PutBulk(all);
    }
}
