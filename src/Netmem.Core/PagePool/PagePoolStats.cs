using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Netmem;

/// <summary>Index of each counter inside a stats block.</summary>
internal enum Stat
{
    AllocFast = 0,
    AllocSlow = 1,
    AllocSlowHighOrder = 2,
    AllocEmpty = 3,
    AllocRefill = 4,
    AllocWaive = 5,
    RecycleCached = 6,
    RecycleCacheFull = 7,
    RecycleRing = 8,
    RecycleRingFull = 9,
    RecycleReleasedRefcnt = 10,
    Hold = 11,
    Release = 12,
    Count = 13,
}

/// <summary>
/// A snapshot of a page pool's counters, named as the kernel's <c>page_pool_stats</c> and
/// netlink page-pool-stats. <see cref="Inflight"/> is <see cref="HoldCount"/> minus
/// <see cref="ReleaseCount"/>.
/// </summary>
public readonly record struct PagePoolStats(
    ulong AllocFast,
    ulong AllocSlow,
    ulong AllocSlowHighOrder,
    ulong AllocEmpty,
    ulong AllocRefill,
    ulong AllocWaive,
    ulong RecycleCached,
    ulong RecycleCacheFull,
    ulong RecycleRing,
    ulong RecycleRingFull,
    ulong RecycleReleasedRefcnt,
    ulong HoldCount,
    ulong ReleaseCount)
{
    /// <summary>Netmems the pool holds or has handed out: taken from the arena or provider and not yet given back.</summary>
    public long Inflight => (long)(HoldCount - ReleaseCount);

    /// <summary>Counter-by-counter sum, for totals over several pools.</summary>
    public static PagePoolStats operator +(PagePoolStats a, PagePoolStats b) => new(
        a.AllocFast + b.AllocFast, a.AllocSlow + b.AllocSlow, a.AllocSlowHighOrder + b.AllocSlowHighOrder,
        a.AllocEmpty + b.AllocEmpty, a.AllocRefill + b.AllocRefill, a.AllocWaive + b.AllocWaive,
        a.RecycleCached + b.RecycleCached, a.RecycleCacheFull + b.RecycleCacheFull, a.RecycleRing + b.RecycleRing,
        a.RecycleRingFull + b.RecycleRingFull, a.RecycleReleasedRefcnt + b.RecycleReleasedRefcnt,
        a.HoldCount + b.HoldCount, a.ReleaseCount + b.ReleaseCount);

    /// <summary>Counter-by-counter sum (the named form of <c>+</c>).</summary>
    public static PagePoolStats Add(PagePoolStats left, PagePoolStats right) => left + right;
}

/// <summary>
/// Per-CPU, cache-line padded counter blocks. Block 0 belongs to the pool's consumer and is
/// written without atomics; blocks 1..N belong to CPUs and are written with
/// <see cref="Interlocked"/>, since two threads can share a CPU index across a migration; blocks
/// N+1..2N belong to the shared-mode per-CPU caches and are written without atomics by whoever
/// holds that cache's lock. Readers sum all blocks with 256-bit vectors. Counters are on in
/// every build.
/// </summary>
internal sealed unsafe class PagePoolCounters : IDisposable
{
    /// <summary>ulongs per block: 13 counters padded to 16 (two cache lines).</summary>
    public const int BlockLongs = 16;

    private readonly ulong* _blocks;
    private readonly int _cpuBlocks;
    private int _disposed;

    public PagePoolCounters()
    {
        _cpuBlocks = Environment.ProcessorCount;
        nuint bytes = (nuint)(((2 * _cpuBlocks) + 1) * BlockLongs * sizeof(ulong));
        _blocks = (ulong*)NativeMemory.AlignedAlloc(bytes, 64);
        NativeMemory.Clear(_blocks, bytes);
    }

    /// <summary>The consumer's block; only the consumer writes it.</summary>
    public ulong* Consumer => _blocks;

    /// <summary>The block of shared-mode CPU cache <paramref name="cpu"/>; only its lock holder writes it.</summary>
    public ulong* LockedBlock(int cpu) => _blocks + ((1 + _cpuBlocks + cpu) * BlockLongs);

    /// <summary>Adds to a counter from any thread, on the current CPU's block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AddAtomic(Stat stat, ulong value = 1)
    {
        int cpu = (int)((uint)Thread.GetCurrentProcessorId() % (uint)_cpuBlocks);
        Interlocked.Add(ref _blocks[((cpu + 1) * BlockLongs) + (int)stat], value);
    }

    /// <summary>Sums every block with SIMD.</summary>
    public PagePoolStats Snapshot()
    {
        Vector256<ulong> a = default, b = default, c = default, d = default;
        int blocks = (2 * _cpuBlocks) + 1;
        for (int i = 0; i < blocks; i++)
        {
            ulong* p = _blocks + (i * BlockLongs);
            a += Vector256.Load(p);
            b += Vector256.Load(p + 4);
            c += Vector256.Load(p + 8);
            d += Vector256.Load(p + 12);
        }

        return new PagePoolStats(
            a[0], a[1], a[2], a[3],
            b[0], b[1], b[2], b[3],
            c[0], c[1], c[2], c[3],
            d[0]);
    }

    /// <summary>Hold minus release, summed across blocks.</summary>
    public long Inflight()
    {
        ulong hold = 0, release = 0;
        // Releases first: a netmem held and released between the two passes then counts as in
        // flight (the safe side for destroy), never as a negative.
        for (int i = 0; i <= 2 * _cpuBlocks; i++)
        {
            release += Volatile.Read(ref _blocks[(i * BlockLongs) + (int)Stat.Release]);
        }

        for (int i = 0; i <= 2 * _cpuBlocks; i++)
        {
            hold += Volatile.Read(ref _blocks[(i * BlockLongs) + (int)Stat.Hold]);
        }

        return (long)(hold - release);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            NativeMemory.AlignedFree(_blocks);
        }
    }
}
