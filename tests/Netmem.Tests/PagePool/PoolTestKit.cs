namespace Netmem.Tests.PagePools;

/// <summary>Pools over private arenas, so every count a test asserts is exact.</summary>
internal static class PoolTestKit
{
    /// <summary>Netmems recycled or released at their last put, by whichever path (the sum of the recycle counters).</summary>
    public static ulong Recycled(PagePoolStats s) => s.RecycleCached + s.RecycleCacheFull + s.RecycleRing + s.RecycleRingFull + s.RecycleReleasedRefcnt;

    /// <summary>An owned-mode pool (consumer binding set) over <paramref name="arena"/>.</summary>
    public static PagePool Owned(PageArena arena, int poolSize = 1024, int order = 0, TimeProvider? clock = null, string name = "test") =>
        new(new PagePoolParams
        {
            Napi = new NapiContext(name),
            Arena = arena,
            PoolSize = poolSize,
            Order = order,
            Name = name,
            TimeProvider = clock,
        });

    /// <summary>A shared-mode pool (no consumer binding) over <paramref name="arena"/>.</summary>
    public static PagePool Shared(PageArena arena, int poolSize = 1024, string name = "shared", TimeProvider? clock = null) =>
        new(new PagePoolParams { Arena = arena, PoolSize = poolSize, Name = name, TimeProvider = clock });

    /// <summary>Runs <paramref name="action"/> on a new thread (not the pool's consumer) and waits for it.</summary>
    public static void OnOtherThread(Action action)
    {
        Exception? failure = null;
        var t = new Thread(() =>
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        t.Start();
        if (!t.Join(TimeSpan.FromSeconds(30)))
        {
            throw new TimeoutException("the other thread did not finish");
        }

        if (failure is not null)
        {
            throw new InvalidOperationException("the other thread failed", failure);
        }
    }

    /// <summary>True when every page the arena carved for <paramref name="order"/> is back on its free list.</summary>
    public static bool ArenaWhole(PageArena arena, int order = 0) => arena.FreePages(order) == arena.TotalPages(order);
}
