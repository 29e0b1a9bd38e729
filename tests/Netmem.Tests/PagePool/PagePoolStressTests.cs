using System.Collections.Concurrent;
using Xunit;
using static Netmem.Tests.PagePools.PoolTestKit;

namespace Netmem.Tests.PagePools;

/// <summary>
/// Bounded stress: fixed iteration counts, join timeouts that fail rather than hang, and
/// assertions on conservation (every page accounted for), never on timing.
/// </summary>
public sealed class PagePoolStressTests
{
    private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void Owned_pool_with_remote_returners_conserves_every_page(int returners)
    {
        const int Iterations = 200_000;
        const long Limit = 64L << 20;
        using var arena = new PageArena(Limit);
        var flags = new PageFlags(arena, Limit);
        var napi = new NapiContext("stress");
        var pool = new PagePool(new PagePoolParams { Napi = napi, Arena = arena, PoolSize = 1024, Name = "stress" });
        using var handoff = new BlockingCollection<NetmemRef>(boundedCapacity: 256);
        int duplicates = 0, nulls = 0, direct = 0;
        long returned = 0;
        Exception? failure = null;

        var consumer = new Thread(() =>
        {
            try
            {
                napi.BindToCurrentThread();
                for (int i = 0; i < Iterations; i++)
                {
                    NetmemRef r = pool.AllocNetmem();
                    if (r.IsNull)
                    {
                        nulls++;
                        continue;
                    }

                    if (!flags.TryTake(r))
                    {
                        duplicates++;
                    }

                    if ((i & 7) == 0)
                    {
                        // The consumer drops some pages itself, straight into its cache.
                        flags.Release(r);
                        pool.RecycleDirect(r);
                        direct++;
                    }
                    else
                    {
                        handoff.Add(r);
                    }
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
            finally
            {
                handoff.CompleteAdding();
                napi.Unbind();
            }
        });

        var workers = new Thread[returners];
        for (int w = 0; w < returners; w++)
        {
            workers[w] = new Thread(() =>
            {
                try
                {
                    foreach (NetmemRef r in handoff.GetConsumingEnumerable())
                    {
                        flags.Release(r);
                        pool.PutNetmem(r, -1, allowDirect: false);
                        Interlocked.Increment(ref returned);
                    }
                }
                catch (Exception e)
                {
                    failure = e;
                }
            });
        }

        consumer.Start();
        Array.ForEach(workers, t => t.Start());
        Assert.True(consumer.Join(JoinTimeout), "consumer did not finish");
        foreach (Thread t in workers)
        {
            Assert.True(t.Join(JoinTimeout), "returner did not finish");
        }

        Assert.Null(failure);
        Assert.Equal(0, nulls);
        Assert.Equal(0, duplicates);
        Assert.Equal(Iterations, direct + returned);
        Assert.Equal(0, flags.Held);

        // Everything is back: what the pool holds is exactly what sits in its cache and ring.
        PagePoolStats s = pool.GetStats();
        Assert.Equal((ulong)returned, s.RecycleRing + s.RecycleRingFull);
        Assert.Equal((ulong)Iterations, s.AllocFast + s.AllocRefill + s.AllocSlow);
        Assert.Equal((long)(s.HoldCount - s.ReleaseCount), s.Inflight);
        Assert.Equal(s.Inflight, pool.Inflight);
        Assert.Equal(pool.AllocCacheCount + pool.RingCount, pool.Inflight);
        Assert.Equal(arena.TotalPages(0) - arena.FreePages(0), (int)pool.Inflight);

        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Shared_pool_used_from_four_threads_hands_no_page_out_twice_and_conserves_pages()
    {
        const int Threads = 4;
        const int Rounds = 20_000;
        const long Limit = 64L << 20;
        using var arena = new PageArena(Limit);
        var flags = new PageFlags(arena, Limit);
        PagePool pool = Shared(arena);
        int duplicates = 0, nulls = 0;
        long allocs = 0;

        ParallelLoopResult result = Parallel.For(0, Threads, new ParallelOptions { MaxDegreeOfParallelism = Threads }, t =>
        {
            var held = new NetmemRef[8];
            for (int round = 0; round < Rounds; round++)
            {
                int n = 1 + ((round + t) & 7);
                for (int i = 0; i < n; i++)
                {
                    held[i] = pool.AllocNetmem();
                    if (held[i].IsNull)
                    {
                        Interlocked.Increment(ref nulls);
                        return;
                    }

                    if (!flags.TryTake(held[i]))
                    {
                        Interlocked.Increment(ref duplicates);
                    }
                }

                Interlocked.Add(ref allocs, n);
                for (int i = 0; i < n; i++)
                {
                    flags.Release(held[i]);
                }

                if ((round & 1) == 0)
                {
                    pool.PutBulk(held.AsSpan(0, n));
                }
                else
                {
                    for (int i = 0; i < n; i++)
                    {
                        pool.PutNetmem(held[i], -1, allowDirect: false);
                    }
                }
            }
        });

        Assert.True(result.IsCompleted);
        Assert.Equal(0, nulls);
        Assert.Equal(0, duplicates);
        Assert.Equal(0, flags.Held);

        PagePoolStats s = pool.GetStats();
        Assert.Equal((ulong)allocs, s.AllocFast + s.AllocRefill + s.AllocSlow);
        Assert.Equal((long)(s.HoldCount - s.ReleaseCount), pool.Inflight);
        Assert.InRange(pool.Inflight, pool.RingCount, pool.RingCount + (Environment.ProcessorCount * PagePool.AllocCacheSize));
        Assert.Equal(arena.TotalPages(0) - arena.FreePages(0), (int)pool.Inflight);

        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.Equal(0L, pool.Inflight);
        Assert.True(ArenaWhole(arena));
    }

    /// <summary>
    /// One ownership flag per page of an arena, set with <see cref="Interlocked"/> while a test
    /// thread holds the page: a page handed out twice at once shows as a failed take.
    /// </summary>
    private sealed class PageFlags
    {
        private readonly int[] _flags;
        private readonly nint _base;
        private int _held;

        public PageFlags(PageArena arena, long limit)
        {
            // A fresh arena carves its first chunk from the start of its reservation, so its
            // first page's address is the base; FromAddress then places every page.
            NetmemRef first = arena.Alloc(0);
            _base = first.PageAddress;
            arena.Free(first);
            _flags = new int[limit / 4096];
        }

        public int Held => Volatile.Read(ref _held);

        public bool TryTake(NetmemRef r)
        {
            Interlocked.Increment(ref _held);
            return Interlocked.Exchange(ref _flags[Index(r)], 1) == 0;
        }

        public void Release(NetmemRef r)
        {
            Interlocked.Decrement(ref _held);
            Volatile.Write(ref _flags[Index(r)], 0);
        }

        private int Index(NetmemRef r) => (int)((r.PageAddress - _base) >> 12);
    }
}
