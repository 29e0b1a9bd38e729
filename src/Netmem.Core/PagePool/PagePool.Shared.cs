using System.Runtime.CompilerServices;

namespace Netmem;

public sealed unsafe partial class PagePool
{
    /// <summary>
    /// Shared mode: allocate from the current CPU's cache under its try-lock; refill it from the
    /// ring, else from the slow path. A thread that finds the lock taken (a peer on the same CPU
    /// index after a migration or preemption) goes to the ring and the slow path directly.
    /// </summary>
    private NetmemRef AllocShared()
    {
        CpuCache* c = CurrentCpuCache();
        if (Interlocked.CompareExchange(ref c->Lock, 1, 0) != 0)
        {
            return AllocSharedContended();
        }

        try
        {
            // Checked under the cache's lock, which Dispose takes to drain it: a refill can never
            // land in a cache that Dispose already drained.
            ThrowIfDestroyed();
            int n = c->Count;
            if (n != 0)
            {
                c->Count = n - 1;
                c->Stats[(int)Stat.AllocFast]++;
                return TakeFromCache(c->Slots[n - 1]);
            }

            int got = RefillFromRing(c->Slots, RefillBatch, c->Stats);
            if (got != 0)
            {
                c->Count = got - 1;
                c->Stats[(int)Stat.AllocRefill]++;
                return TakeFromCache(c->Slots[got - 1]);
            }

            c->Stats[(int)Stat.AllocEmpty]++;
            return AllocSlow(c->Slots, RefillBatch, ref c->Count, c->Stats);
        }
        finally
        {
            Volatile.Write(ref c->Lock, 0);
        }
    }

    private NetmemRef AllocSharedContended()
    {
        ThrowIfDestroyed();
        nuint one;
        int got = RefillFromRing(&one, 1, null);
        if (got != 0)
        {
            _stats.AddAtomic(Stat.AllocRefill);
            return TakeFromCache(one);
        }

        _stats.AddAtomic(Stat.AllocEmpty);
        int none = 0;
        return AllocSlow(&one, 1, ref none, null);
    }

    /// <summary>
    /// Shared mode: park a recycled netmem in the current CPU's cache; a full cache first flushes
    /// half of itself to the ring so other CPUs can reach those pages. The destroy state is read
    /// again under the cache's lock, the lock <see cref="Dispose"/> takes to drain that cache: a
    /// returner that parks holds the lock before the drain (which then takes its page), and one
    /// that takes the lock after the drain sees the pool destroyed and releases its page.
    /// </summary>
    private void RecycleShared(nuint value)
    {
        CpuCache* c = CurrentCpuCache();
        if (Interlocked.CompareExchange(ref c->Lock, 1, 0) != 0)
        {
            RecycleInRing(value);
            return;
        }

        if (Volatile.Read(ref _destroyState) != 0)
        {
            Volatile.Write(ref c->Lock, 0);
            ReleaseAfterDestroy(new NetmemRef(value));
            return;
        }

        try
        {
            int n = c->Count;
            if (n == AllocCacheSize)
            {
                c->Stats[(int)Stat.RecycleCacheFull]++;
                int keep = AllocCacheSize - RefillBatch;
                FlushToRing(new ReadOnlySpan<nuint>(c->Slots + keep, RefillBatch));
                n = keep;
            }

            c->Slots[n] = value;
            c->Count = n + 1;
            c->Stats[(int)Stat.RecycleCached]++;
        }
        finally
        {
            Volatile.Write(ref c->Lock, 0);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private CpuCache* CurrentCpuCache() => _cpuCaches + ((uint)Thread.GetCurrentProcessorId() % (uint)_cpuCount);
}
