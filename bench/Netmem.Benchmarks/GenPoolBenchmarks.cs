using System.Collections.Concurrent;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using Netmem.Genalloc;

namespace Netmem.Benchmarks;

/// <summary>
/// Builds the regions the GenPool benchmarks run on: one chunk of 4 KiB granules
/// (minAllocOrder 12), filled to a given fullness.
/// </summary>
/// <remarks>
/// Fill patterns:
/// <list type="bullet">
/// <item><b>Scattered</b>: every granule is allocated, then a seeded (42) random choice of
/// exactly <c>granules * (100 - full) / 100</c> distinct granules is freed (partial
/// Fisher-Yates), so free granules are spread uniformly: at 90% a 64-granule bitmap word holds
/// about 6 free granules, at 99% about 0.6 (about half the words are all ones).</item>
/// <item><b>Packed</b>: the first <c>full</c>% of the granules are allocated, the rest free, as
/// first fit without a hint leaves a region: a search from the start crosses every full word.</item>
/// <item><b>FullButLast</b>: everything allocated except the last granule: the scan an
/// allocation makes when the pool is (nearly) exhausted.</item>
/// </list>
/// </remarks>
internal static class GenPoolRegions
{
    public const int Order = 12;
    public const ulong Page = 1UL << Order;
    public const ulong Base = 0x10_0000_0000;

    public static IEnumerable<GenPoolSearch> AvailableSearches()
    {
        yield return GenPoolSearch.Scalar;
        if (Vector256.IsHardwareAccelerated)
        {
            yield return GenPoolSearch.Vector256;
        }

        if (Vector512.IsHardwareAccelerated)
        {
            yield return GenPoolSearch.Vector512;
        }
    }

    public static GenPool Scattered(ulong regionBytes, int fullPercent, GenPoolSearch search)
    {
        var pool = new GenPool(Order, GenPoolAlgorithm.FirstFit, "bench") { Search = search };
        pool.AddChunk(Base, regionBytes, null);
        int granules = (int)(regionBytes / Page);
        if (fullPercent == 0)
        {
            return pool;
        }

        for (int i = 0; i < granules; i++)
        {
            pool.Alloc(Page);
        }

        int toFree = (int)((long)granules * (100 - fullPercent) / 100);
        var index = new int[granules];
        for (int i = 0; i < granules; i++)
        {
            index[i] = i;
        }

        var random = new Random(42);
        for (int i = 0; i < toFree; i++)
        {
            int j = random.Next(i, granules);
            (index[i], index[j]) = (index[j], index[i]);
            pool.Free(Base + ((ulong)index[i] * Page), Page);
        }

        pool.ResetHints();
        return pool;
    }

    public static GenPool Packed(ulong regionBytes, long allocatedGranules, GenPoolSearch search)
    {
        var pool = new GenPool(Order, GenPoolAlgorithm.FirstFit, "bench") { Search = search };
        pool.AddChunk(Base, regionBytes, null);
        for (long i = 0; i < allocatedGranules; i++)
        {
            pool.Alloc(Page);
        }

        pool.ResetHints();
        return pool;
    }
}

/// <summary>
/// Alloc + free of one 4 KiB page on a 1 GiB region (262,144 granules, a 32 KiB bitmap) at
/// several fullnesses, scattered pattern, per search path. With the next-fit hint, the search
/// starts where the last free was, so this is the steady-state cost a page-at-a-time user sees.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class GenPoolAllocFreeBenchmarks
{
    private GenPool _pool = null!;

    [Params(0, 50, 90, 99)]
    public int FullPercent { get; set; }

    [ParamsSource(nameof(Searches))]
    public GenPoolSearch Search { get; set; }

    public static IEnumerable<GenPoolSearch> Searches() => GenPoolRegions.AvailableSearches();

    [GlobalSetup]
    public void Setup() => _pool = GenPoolRegions.Scattered(1UL << 30, FullPercent, Search);

    [Benchmark]
    public ulong AllocFreePage()
    {
        ulong addr = _pool.Alloc(GenPoolRegions.Page);
        _pool.Free(addr, GenPoolRegions.Page);
        return addr;
    }
}

/// <summary>
/// Alloc + free of one page at 90% full (scattered) on 1 MiB, 64 MiB and 1 GiB regions: the
/// cost must not grow with the region.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class GenPoolRegionSizeBenchmarks
{
    private GenPool _pool = null!;

    [Params(1, 64, 1024)]
    public int RegionMiB { get; set; }

    [ParamsSource(nameof(Searches))]
    public GenPoolSearch Search { get; set; }

    public static IEnumerable<GenPoolSearch> Searches() => GenPoolRegions.AvailableSearches();

    [GlobalSetup]
    public void Setup() => _pool = GenPoolRegions.Scattered((ulong)RegionMiB << 20, 90, Search);

    [Benchmark]
    public ulong AllocFreePage()
    {
        ulong addr = _pool.Alloc(GenPoolRegions.Page);
        _pool.Free(addr, GenPoolRegions.Page);
        return addr;
    }
}

/// <summary>
/// Peer for the alloc + free of one page: a <see cref="ConcurrentQueue{T}"/> of free page
/// addresses (what a page-only pool would use instead of a bitmap), 90% of the region's pages
/// taken out of it.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class GenPoolPeerBenchmarks
{
    private readonly ConcurrentQueue<ulong> _free = new();

    [Params(1, 64, 1024)]
    public int RegionMiB { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        ulong pages = ((ulong)RegionMiB << 20) / GenPoolRegions.Page;
        for (ulong i = pages * 9 / 10; i < pages; i++)
        {
            _free.Enqueue(GenPoolRegions.Base + (i * GenPoolRegions.Page));
        }
    }

    [Benchmark(Baseline = true)]
    public ulong ConcurrentQueueTakeReturnPage()
    {
        _free.TryDequeue(out ulong addr);
        _free.Enqueue(addr);
        return addr;
    }
}

/// <summary>
/// The bitmap scan itself, hint out of the way, on a 1 GiB region: a first-fit search from
/// granule 0 that claims nothing (<c>FindFirstFit</c>, for runs of 1 and of 16 pages), and alloc
/// + free with the next-fit hint turned off (every search starts at granule 0, as the kernel's
/// genalloc does). This is where the SIMD skip of full words shows, or does not.
/// </summary>
[MemoryDiagnoser]
[MedianColumn]
public class GenPoolColdScanBenchmarks
{
    private GenPool _pool = null!;

    public enum RegionLayout
    {
        Scattered90,
        Packed90,
        FullButLast,
    }

    [Params(RegionLayout.Scattered90, RegionLayout.Packed90, RegionLayout.FullButLast)]
    public RegionLayout Layout { get; set; }

    [ParamsSource(nameof(Searches))]
    public GenPoolSearch Search { get; set; }

    public static IEnumerable<GenPoolSearch> Searches() => GenPoolRegions.AvailableSearches();

    [GlobalSetup]
    public void Setup()
    {
        const ulong Region = 1UL << 30;
        long granules = (long)(Region / GenPoolRegions.Page);
        _pool = Layout switch
        {
            RegionLayout.Scattered90 => GenPoolRegions.Scattered(Region, 90, Search),
            RegionLayout.Packed90 => GenPoolRegions.Packed(Region, granules * 9 / 10, Search),
            _ => GenPoolRegions.Packed(Region, granules - 1, Search),
        };
        _pool.UseHint = false;
    }

    [Benchmark]
    public int FindFirstFit1() => _pool.FindFirstFit(0, 1);

    [Benchmark]
    public int FindFirstFit16() => _pool.FindFirstFit(0, 16);

    [Benchmark]
    public ulong AllocFreePageNoHint()
    {
        ulong addr = _pool.Alloc(GenPoolRegions.Page);
        _pool.Free(addr, GenPoolRegions.Page);
        return addr;
    }
}
