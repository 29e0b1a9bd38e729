using Xunit;
using static Netmem.Tests.PagePools.PoolTestKit;

namespace Netmem.Tests.PagePools;

public sealed class PagePoolFragTests
{
    [Fact]
    public void Frags_are_carved_from_one_page_at_increasing_64_byte_aligned_offsets()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        int[] sizes = [100, 64, 1, 200, 1500];
        int[] expected = [0, 128, 192, 256, 512];
        NetmemRef page = default;
        for (int i = 0; i < sizes.Length; i++)
        {
            NetmemRef f = pool.AllocFrag(sizes[i], out int offset);
            if (i == 0)
            {
                page = f;
            }

            Assert.Equal(page, f);
            Assert.Equal(expected[i], offset);
            Assert.Equal(0, offset % 64);
        }

        Assert.Equal(64UL, pool.GetStats().HoldCount); // one slow-path bulk, one page carved
        Assert.Equal(63, pool.AllocCacheCount);
        for (int i = 0; i < sizes.Length; i++)
        {
            pool.RecycleDirect(page);
        }

        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void A_frag_that_does_not_fit_starts_a_new_page()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef first = pool.AllocFrag(3000, out int o1);
        NetmemRef second = pool.AllocFrag(2000, out int o2);
        Assert.NotEqual(first, second);
        Assert.Equal(0, o1);
        Assert.Equal(0, o2);
        pool.RecycleDirect(first);
        pool.RecycleDirect(second);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Fragged_page_recycles_only_after_its_last_frag_is_put()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        var frags = new NetmemRef[4];
        for (int i = 0; i < 4; i++)
        {
            frags[i] = pool.AllocFrag(1024, out int off);
            Assert.Equal(i * 1024, off);
        }

        Assert.All(frags, f => Assert.Equal(frags[0], f));
        NetmemRef page = frags[0];

        // The fifth frag does not fit: carving moves to a new page and the first keeps one
        // pool reference per frag still out.
        NetmemRef next = pool.AllocFrag(1024, out int nextOff);
        Assert.NotEqual(page, next);
        Assert.Equal(0, nextOff);
        Assert.Equal(4L, page.PoolRefCount);

        PagePoolStats before = pool.GetStats();
        for (int i = 0; i < 3; i++)
        {
            pool.RecycleDirect(frags[i]);
            Assert.Equal(3L - i, page.PoolRefCount);
            Assert.Equal(before, pool.GetStats());
        }

        pool.RecycleDirect(frags[3]);
        PagePoolStats after = pool.GetStats();
        Assert.Equal(before.RecycleCached + 1, after.RecycleCached);
        Assert.Equal(1L, page.PoolRefCount); // parked value

        // The recycled page is on top of the cache.
        Assert.Equal(page, pool.AllocNetmem());
        pool.RecycleDirect(page);
        pool.RecycleDirect(next);
        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Frag_put_after_carving_moved_on_but_before_the_others_does_not_recycle()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        NetmemRef a = pool.AllocFrag(2048, out _);
        NetmemRef b = pool.AllocFrag(2048, out _);
        pool.RecycleDirect(a); // returned while the page is still being carved
        Assert.Equal(0UL, pool.GetStats().RecycleCached);

        NetmemRef c = pool.AllocFrag(64, out _); // carving moves on; b is still out
        Assert.NotEqual(b, c);
        Assert.Equal(0UL, pool.GetStats().RecycleCached);
        Assert.Equal(1L, b.PoolRefCount);

        pool.RecycleDirect(b);
        Assert.Equal(1UL, pool.GetStats().RecycleCached);
        pool.RecycleDirect(c);
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    [InlineData(4097)]
    public void Frag_size_outside_1_to_page_size_throws(int size)
    {
        using var arena = new PageArena(2 << 20);
        PagePool pool = Owned(arena);
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.AllocFrag(size, out _));
        Assert.Equal(0UL, pool.GetStats().HoldCount);
        pool.Dispose();
    }
    [Fact]
    public void FragmentNetmem_gives_one_reference_per_part_and_the_netmem_recycles_once_after_the_last_put_from_any_thread()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Shared(arena);
        NetmemRef n = pool.AllocNetmem();
        pool.FragmentNetmem(n, 8);
        Assert.Equal(8, n.PoolRefCount);

        Parallel.For(0, 7, new ParallelOptions { MaxDegreeOfParallelism = 4 }, _ => pool.PutNetmem(n, -1, allowDirect: false));
        Assert.Equal(1, n.PoolRefCount);
        PagePoolStats before = pool.GetStats();
        pool.PutNetmem(n, -1, allowDirect: false);
        PagePoolStats after = pool.GetStats();
        Assert.Equal(Recycled(before) + 1, Recycled(after));

        // A ninth put is a double put, and changes nothing.
        var e = Assert.Throws<PagePoolMisuseException>(() => pool.PutNetmem(n, -1, allowDirect: false));
        Assert.Equal(PagePoolMisuse.DoublePut, e.Misuse);
        Assert.Equal(after, pool.GetStats());
        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void FragmentNetmem_refuses_a_netmem_already_shared_returned_or_foreign_and_a_count_below_one_changing_nothing()
    {
        using var arena = new PageArena(4 << 20);
        PagePool pool = Owned(arena);
        PagePool other = Owned(arena, name: "other");
        NetmemRef n = pool.AllocNetmem();

        Assert.Throws<ArgumentOutOfRangeException>(() => pool.FragmentNetmem(n, 0));
        pool.FragmentNetmem(n, 1);
        Assert.Equal(1, n.PoolRefCount);

        pool.FragmentNetmem(n, 2);
        var shared = Assert.Throws<InvalidOperationException>(() => pool.FragmentNetmem(n, 3));
        Assert.Contains("2 references", shared.Message);
        Assert.Equal(2, n.PoolRefCount);

        NetmemRef foreign = other.AllocNetmem();
        Assert.Equal(PagePoolMisuse.ForeignPool, Assert.Throws<PagePoolMisuseException>(() => pool.FragmentNetmem(foreign, 2)).Misuse);
        Assert.Equal(1, foreign.PoolRefCount);

        pool.RecycleDirect(n);
        pool.RecycleDirect(n);
        Assert.Equal(PagePoolMisuse.DoublePut, Assert.Throws<PagePoolMisuseException>(() => pool.FragmentNetmem(n, 2)).Misuse);

        other.RecycleDirect(foreign);
        pool.Dispose();
        other.Dispose();
        Assert.True(pool.IsFreed && other.IsFreed);
        Assert.True(ArenaWhole(arena));
    }
}
