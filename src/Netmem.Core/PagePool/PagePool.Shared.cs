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
        ThrowIfDestroyed();
        CpuCache* c = CurrentCpuCache();
        if (Interlocked.CompareExchange(ref c->Lock, 1, 0) != 0)
        {
            return AllocSharedContended();
        }

        try
        {
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
    /// half of itself to the ring so other CPUs can reach those pages.
    /// </summary>
    private void RecycleShared(nuint value)
    {
        CpuCache* c = CurrentCpuCache();
        if (Interlocked.CompareExchange(ref c->Lock, 1, 0) != 0)
        {
            RecycleInRing(value);
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
