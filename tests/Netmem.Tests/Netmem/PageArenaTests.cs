using Xunit;

namespace Netmem.Tests.Memory;

public sealed class PageArenaTests
{
    [Theory]
    [InlineData(0, 4096)]
    [InlineData(1, 8192)]
    [InlineData(2, 16384)]
    [InlineData(3, 32768)]
    public void Page_of_each_order_spans_4KiB_shifted_by_order(int order, int bytes)
    {
        using var arena = new PageArena(4 << 20);
        NetmemRef a = arena.Alloc(order);
        NetmemRef b = arena.Alloc(order);
        Assert.Equal(bytes, a.Size);
        Assert.Equal(order, a.PageOrder);
        Assert.Equal(bytes, a.GetPageSpan().Length);

        // Consecutive blocks of one chunk are laid out back to back.
        Assert.Equal(bytes, (long)b.PageAddress - (long)a.PageAddress);
        Assert.Equal(PageArena.DefaultChunkSize / bytes, arena.TotalPages(order));
        Assert.Equal(2, arena.PagesOut(order));
        arena.Free(a);
        arena.Free(b);
        Assert.Equal(0, arena.PagesOut(order));
    }

    [Fact]
    public void Page_memory_is_writable_across_its_whole_span()
    {
        using var arena = new PageArena(2 << 20);
        NetmemRef p = arena.Alloc(3);
        Span<byte> span = p.GetPageSpan();
        span.Fill(0x5a);
        Assert.Equal(0x5a, span[0]);
        Assert.Equal(0x5a, span[^1]);
        arena.Free(p);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4095)]
    [InlineData(4096)]
    [InlineData(12345)]
    [InlineData(28672)]
    [InlineData(32767)]
    public void FromAddress_of_any_byte_of_an_order_3_page_returns_its_head(int offset)
    {
        using var arena = new PageArena(2 << 20);
        NetmemRef first = arena.Alloc(3);
        NetmemRef second = arena.Alloc(3);
        Assert.Equal(second, arena.FromAddress(second.PageAddress + offset));
        Assert.Equal(first, arena.FromAddress(first.PageAddress + offset));
        arena.Free(first);
        arena.Free(second);
    }

    [Fact]
    public void FromAddress_of_each_byte_offset_of_an_order_0_page_returns_that_page()
    {
        using var arena = new PageArena(2 << 20);
        NetmemRef p = arena.Alloc(0);
        NetmemRef q = arena.Alloc(0);
        Assert.Equal(p, arena.FromAddress(p.PageAddress));
        Assert.Equal(p, arena.FromAddress(p.PageAddress + 4095));
        Assert.Equal(q, arena.FromAddress(p.PageAddress + 4096));
        Assert.True(arena.Contains(q.PageAddress + 100));
        arena.Free(p);
        arena.Free(q);
    }

    [Fact]
    public void FromAddress_outside_the_carved_memory_returns_null()
    {
        using var arena = new PageArena(4 << 20);
        NetmemRef p = arena.Alloc(0);
        Assert.True(arena.FromAddress(p.PageAddress - 1).IsNull);
        Assert.True(arena.FromAddress(p.PageAddress + (nint)arena.CommittedBytes).IsNull); // not carved yet
        Assert.True(arena.FromAddress(0).IsNull);
        Assert.False(arena.Contains(p.PageAddress - 1));
        arena.Free(p);
    }

    [Fact]
    public void Freed_page_is_handed_out_again()
    {
        using var arena = new PageArena(2 << 20);
        NetmemRef p = arena.Alloc(0);
        int total = arena.TotalPages(0);
        arena.Free(p);
        Assert.True(arena.IsFree(p));
        Assert.Equal(total, arena.FreePages(0));

        NetmemRef again = arena.Alloc(0);
        Assert.Equal(p, again);
        Assert.False(arena.IsFree(again));
        Assert.Equal(total, arena.TotalPages(0)); // reused, not grown
        arena.Free(again);
    }

    [Fact]
    public void Arena_grows_chunk_by_chunk_up_to_its_limit()
    {
        using var arena = new PageArena(4 << 20); // two 2 MiB chunks
        Assert.Equal(0L, arena.CommittedBytes);
        NetmemRef first = arena.Alloc(0);
        Assert.Equal(2L << 20, arena.CommittedBytes);
        Assert.Equal(512, arena.TotalPages(0));

        var rest = new NetmemRef[511 + 1];
        Assert.Equal(512, arena.AllocBulk(0, rest)); // 511 from the first chunk, then grow
        Assert.Equal(4L << 20, arena.CommittedBytes);
        Assert.Equal(1024, arena.TotalPages(0));
        arena.Free(first);
        foreach (NetmemRef r in rest)
        {
            arena.Free(r);
        }

        Assert.Equal(1024, arena.FreePages(0));
    }

    [Fact]
    public void AllocBulk_past_the_limit_returns_only_what_fits()
    {
        using var arena = new PageArena(4 << 20);
        var pages = new NetmemRef[1100];
        int got = arena.AllocBulk(0, pages);
        Assert.Equal(1024, got);
        Assert.True(pages[1024].IsNull);
        Assert.Equal(0, arena.FreePages(0));
        Assert.Equal(4L << 20, arena.CommittedBytes);
        for (int i = 0; i < got; i++)
        {
            arena.Free(pages[i]);
        }
    }

    [Fact]
    public void Alloc_past_the_limit_returns_null_without_throwing()
    {
        using var arena = new PageArena(2 << 20);
        var pages = new NetmemRef[64];
        Assert.Equal(64, arena.AllocBulk(3, pages)); // the one chunk went to order 3
        Assert.True(arena.Alloc(3).IsNull);
        Assert.True(arena.Alloc(0).IsNull); // no chunk left for another order either
        Assert.Equal(0, arena.TotalPages(0));
        arena.Free(pages[5]);
        Assert.Equal(pages[5], arena.Alloc(3)); // a freed page makes room again
        foreach (NetmemRef r in pages)
        {
            arena.Free(r);
        }
    }

    [Fact]
    public void Freeing_a_page_twice_throws_and_leaves_the_counts_alone()
    {
        using var arena = new PageArena(2 << 20);
        NetmemRef p = arena.Alloc(0);
        arena.Free(p);
        int free = arena.FreePages(0);
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => arena.Free(p));
        Assert.Contains("double free", e.Message);
        Assert.Equal(free, arena.FreePages(0));

        // The free list holds the page once: draining it hands the page out exactly once.
        var all = new NetmemRef[arena.TotalPages(0)];
        Assert.Equal(all.Length, arena.AllocBulk(0, all));
        Assert.Single(all, r => r == p);
        Assert.True(arena.Alloc(0).IsNull);
        foreach (NetmemRef r in all)
        {
            arena.Free(r);
        }
    }

    [Fact]
    public void Freeing_a_page_of_another_arena_throws()
    {
        using var a = new PageArena(2 << 20);
        using var b = new PageArena(2 << 20);
        NetmemRef p = a.Alloc(0);
        Assert.Throws<ArgumentException>(() => b.Free(p));
        Assert.Equal(1, a.PagesOut(0));
        a.Free(p);
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(6)]
    [InlineData(11)]
    public void Invalid_order_throws(int order)
    {
        using var arena = new PageArena(2 << 20);
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.Alloc(order));
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.AllocBulk(order, new NetmemRef[4]));
        Assert.Throws<ArgumentOutOfRangeException>(() => arena.FreePages(order));
        Assert.Equal(0L, arena.CommittedBytes);
    }

    [Fact]
    public void Bad_limit_or_chunk_size_throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new PageArena((2L << 20) + 4096)); // not a multiple of the chunk
        Assert.Throws<ArgumentOutOfRangeException>(() => new PageArena(4L << 20, 3 << 15)); // chunk not a power of two
        Assert.Throws<ArgumentOutOfRangeException>(() => new PageArena(2L << 20, 16384));   // chunk below 128 KiB (one page of the highest order)
    }

    [Fact]
    public void Concurrent_alloc_and_free_hands_no_page_out_twice_and_conserves_pages()
    {
        const int Threads = 4;
        const int Rounds = 3000;
        const long Limit = 8L << 20;
        using var arena = new PageArena(Limit);

        // A fresh arena hands its pages out in address order: the first descriptor anchors the
        // table, so each page gets a flag slot by its descriptor index.
        NetmemRef first = arena.Alloc(0);
        nuint desc0 = first.Value;
        arena.Free(first);
        int[] owned = new int[Limit / 4096];
        int duplicates = 0;
        long allocated = 0;

        var threads = new Thread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            int seed = t;
            threads[t] = new Thread(() =>
            {
                var rnd = new Random(seed);
                var held = new NetmemRef[64];
                for (int round = 0; round < Rounds; round++)
                {
                    int want = 1 + rnd.Next(held.Length);
                    int got = want == 1 ? (held[0] = arena.Alloc(0)).IsNull ? 0 : 1 : arena.AllocBulk(0, held.AsSpan(0, want));
                    for (int i = 0; i < got; i++)
                    {
                        if (Interlocked.Exchange(ref owned[(held[i].Value - desc0) / 64], 1) != 0)
                        {
                            Interlocked.Increment(ref duplicates);
                        }
                    }

                    Interlocked.Add(ref allocated, got);
                    for (int i = 0; i < got; i++)
                    {
                        Volatile.Write(ref owned[(held[i].Value - desc0) / 64], 0);
                        arena.Free(held[i]);
                    }
                }
            });
            threads[t].Start();
        }

        foreach (Thread th in threads)
        {
            Assert.True(th.Join(TimeSpan.FromSeconds(60)), "arena stress thread did not finish");
        }

        Assert.Equal(0, duplicates);
        Assert.True(allocated >= Threads * Rounds);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
        Assert.Equal(0, arena.PagesOut(0));
        Assert.All(owned, f => Assert.Equal(0, f));
    }
}
