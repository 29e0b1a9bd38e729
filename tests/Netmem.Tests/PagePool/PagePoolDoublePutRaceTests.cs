using Xunit;
using static Netmem.Tests.PagePools.PoolTestKit;

namespace Netmem.Tests.PagePools;

/// <summary>
/// Two threads put the same netmem at the same instant, released together by a barrier, round
/// after round. Bounded by the round count; asserts outcomes and conservation, never speed.
/// </summary>
public sealed class PagePoolDoublePutRaceTests
{
    private const int Rounds = 1500;

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void Two_threads_putting_the_same_netmem_at_once_one_succeeds_the_other_gets_DoublePut(bool shared, bool bulk)
    {
        using var arena = new PageArena(8 << 20);
        PagePool pool = shared ? Shared(arena, poolSize: 4096) : Owned(arena, poolSize: 4096);
        NetmemRef target = NetmemRef.Null;
        var outcomes = new PagePoolMisuse?[2];
        var failures = new Exception?[2];
        using var start = new Barrier(3);
        using var end = new Barrier(3);

        Thread[] putters = new Thread[2];
        for (int t = 0; t < 2; t++)
        {
            int me = t;
            putters[t] = new Thread(() =>
            {
                for (int round = 0; round < Rounds; round++)
                {
                    start.SignalAndWait();
                    try
                    {
                        if (bulk)
                        {
                            pool.PutBulk([target]);
                        }
                        else
                        {
                            pool.PutNetmem(target, -1, allowDirect: false);
                        }

                        outcomes[me] = null;
                    }
                    catch (PagePoolMisuseException e)
                    {
                        outcomes[me] = e.Misuse;
                    }
                    catch (Exception e)
                    {
                        failures[me] = e;
                    }

                    end.SignalAndWait();
                }
            })
            { IsBackground = true, Name = $"putter-{t}" };
            putters[t].Start();
        }

        int succeededTwice = 0, failedTwice = 0, otherErrors = 0;
        for (int round = 0; round < Rounds; round++)
        {
            target = pool.AllocNetmem();
            Assert.False(target.IsNull);
            start.SignalAndWait(TestContext.Current.CancellationToken);
            end.SignalAndWait(TestContext.Current.CancellationToken);
            int ok = (outcomes[0] is null ? 1 : 0) + (outcomes[1] is null ? 1 : 0);
            succeededTwice += ok == 2 ? 1 : 0;
            failedTwice += ok == 0 ? 1 : 0;
            otherErrors += outcomes[0] is { } m0 && m0 != PagePoolMisuse.DoublePut ? 1 : 0;
            otherErrors += outcomes[1] is { } m1 && m1 != PagePoolMisuse.DoublePut ? 1 : 0;
        }

        foreach (Thread t in putters)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(60)));
        }

        Assert.Null(failures[0]);
        Assert.Null(failures[1]);
        Assert.Equal(0, succeededTwice);
        Assert.Equal(0, failedTwice);
        Assert.Equal(0, otherErrors);

        // Nothing is in flight, and everything the pool holds comes out once: no page can be
        // handed to two owners.
        Assert.Equal(0, CountHandedOutTwice(pool));
        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.True(ArenaWhole(arena));
    }

    [Fact]
    public void Two_holders_of_a_netmem_putting_at_once_both_succeed_and_it_is_recycled_once()
    {
        using var arena = new PageArena(8 << 20);
        PagePool pool = Owned(arena, poolSize: 4096);
        NetmemRef target = NetmemRef.Null;
        var failures = new Exception?[2];
        using var start = new Barrier(3);
        using var end = new Barrier(3);
        Thread[] putters = new Thread[2];
        for (int t = 0; t < 2; t++)
        {
            int me = t;
            putters[t] = new Thread(() =>
            {
                for (int round = 0; round < Rounds; round++)
                {
                    start.SignalAndWait();
                    try
                    {
                        pool.PutNetmem(target, -1, allowDirect: false);
                    }
                    catch (Exception e)
                    {
                        failures[me] ??= e;
                    }

                    end.SignalAndWait();
                }
            })
            { IsBackground = true };
            putters[t].Start();
        }

        long ringBefore = (long)pool.GetStats().RecycleRing;
        for (int round = 0; round < Rounds; round++)
        {
            target = pool.AllocNetmem();
            pool.GetNetmemReference(target); // a second holder
            start.SignalAndWait(TestContext.Current.CancellationToken);
            end.SignalAndWait(TestContext.Current.CancellationToken);
        }

        foreach (Thread t in putters)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(60)));
        }

        Assert.Null(failures[0]);
        Assert.Null(failures[1]);
        Assert.Equal((ulong)(ringBefore + Rounds), pool.GetStats().RecycleRing); // one recycle per round
        Assert.Equal(0UL, pool.GetStats().RecycleRingFull);
        Assert.Equal(0, CountHandedOutTwice(pool));
        pool.Dispose();
        Assert.True(ArenaWhole(arena));
    }

    /// <summary>
    /// Allocates as many netmems as the pool holds (it has none out) and counts those handed out
    /// more than once. An owned pool reaches all it holds, so none may come from the arena; a
    /// shared pool reaches its current CPU's cache and the ring, and the arena makes up the rest.
    /// </summary>
    private static int CountHandedOutTwice(PagePool pool)
    {
        long held = pool.Inflight;
        var all = new NetmemRef[held];
        Assert.Equal((int)held, pool.AllocBulk(all));
        if (!pool.IsShared)
        {
            Assert.Equal(held, pool.Inflight);
        }

        int twice = all.Length - all.Distinct().Count();
        pool.PutBulk(all);
        return twice;
    }
}
