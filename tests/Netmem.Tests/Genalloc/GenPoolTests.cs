using System.Runtime.Intrinsics;
using Netmem.Genalloc;
using Netmem.Native;
using Xunit;

namespace Netmem.Tests.Genalloc;

public class GenPoolTests
{
    private const int PageOrder = 12;
    private const ulong Page = 1UL << PageOrder;
    private const ulong Base = 0x1_0000_0000;

    /// <summary>Every search path this machine can run.</summary>
    public static TheoryData<GenPoolSearch> AvailableSearches()
    {
        var data = new TheoryData<GenPoolSearch> { GenPoolSearch.Scalar };
        if (Vector256.IsHardwareAccelerated)
        {
            data.Add(GenPoolSearch.Vector256);
        }

        if (Vector512.IsHardwareAccelerated)
        {
            data.Add(GenPoolSearch.Vector512);
        }

        return data;
    }

    private static GenPool PagePool(ulong pages, GenPoolAlgorithm algorithm = GenPoolAlgorithm.FirstFit, object? owner = null)
    {
        var pool = new GenPool(PageOrder, algorithm, "test");
        pool.AddChunk(Base, pages * Page, owner);
        return pool;
    }

    // ---- allocation ----

    [Fact]
    public void Alloc_ReturnsChunkStartThenConsecutiveAddresses()
    {
        var pool = PagePool(16);

        Assert.Equal(Base, pool.Alloc(Page));
        Assert.Equal(Base + Page, pool.Alloc(Page));
        Assert.Equal(Base + (2 * Page), pool.Alloc(3 * Page));
        Assert.Equal(Base + (5 * Page), pool.Alloc(Page));
    }

    [Fact]
    public void Alloc_RoundsSizeUpToTheGranule()
    {
        var pool = PagePool(16);

        ulong a = pool.Alloc(1);
        ulong b = pool.Alloc(Page + 1);
        ulong c = pool.Alloc(Page);

        Assert.Equal(Base, a);
        Assert.Equal(Base + Page, b);
        Assert.Equal(Base + (3 * Page), c);
        Assert.Equal(12 * Page, pool.Avail);
    }

    [Fact]
    public void Alloc_WhenExhausted_ReturnsZero()
    {
        var pool = PagePool(4);
        for (int i = 0; i < 4; i++)
        {
            Assert.NotEqual(0UL, pool.Alloc(Page));
        }

        Assert.Equal(0UL, pool.Alloc(Page));
        Assert.Equal(0UL, pool.Avail);
    }

    [Fact]
    public void Alloc_LargerThanAnyFreeRun_ReturnsZeroAndChangesNothing()
    {
        var pool = PagePool(4);
        ulong a = pool.Alloc(Page);
        pool.Alloc(Page);
        pool.Free(a, Page);

        Assert.Equal(0UL, pool.Alloc(3 * Page));
        Assert.Equal(3 * Page, pool.Avail);
    }

    [Fact]
    public void Alloc_OfZeroBytes_ReturnsZero()
    {
        var pool = PagePool(4);

        Assert.Equal(0UL, pool.Alloc(0));
        Assert.Equal(4 * Page, pool.Avail);
    }

    [Fact]
    public void Alloc_OnEmptyPool_ReturnsZero()
    {
        var pool = new GenPool(PageOrder);

        Assert.Equal(0UL, pool.Alloc(Page, out object? owner));
        Assert.Null(owner);
    }

    [Fact]
    public void AllocWithOwner_ReportsTheOwnerOfTheChunkItCameFrom()
    {
        var first = new object();
        var second = new object();
        var pool = new GenPool(PageOrder);
        pool.AddChunk(Base, Page, first);
        pool.AddChunk(Base + (16 * Page), Page, second);

        ulong a = pool.Alloc(Page, out object? ownerA);
        ulong b = pool.Alloc(Page, out object? ownerB);
        ulong c = pool.Alloc(Page, out object? ownerC);

        Assert.Equal(Base, a);
        Assert.Same(first, ownerA);
        Assert.Equal(Base + (16 * Page), b);
        Assert.Same(second, ownerB);
        Assert.Equal(0UL, c);
        Assert.Null(ownerC);
    }

    [Fact]
    public void Alloc_TriesChunksInTheOrderAdded()
    {
        var pool = new GenPool(PageOrder);
        pool.AddChunk(Base + (64 * Page), 4 * Page, "high");
        pool.AddChunk(Base, 4 * Page, "low");

        Assert.Equal(Base + (64 * Page), pool.Alloc(Page, out object? owner));
        Assert.Equal("high", owner);
    }

    [Fact]
    public void Alloc_SkipsAChunkWithoutARunLongEnough()
    {
        var pool = new GenPool(PageOrder);
        pool.AddChunk(Base, 2 * Page, "small");
        pool.AddChunk(Base + (16 * Page), 8 * Page, "large");

        Assert.Equal(Base + (16 * Page), pool.Alloc(4 * Page, out object? owner));
        Assert.Equal("large", owner);
        Assert.Equal(Base, pool.Alloc(2 * Page));
    }

    [Fact]
    public void Alloc_AfterFree_ReusesTheFreedGranule()
    {
        var pool = PagePool(64);
        var addrs = new ulong[64];
        for (int i = 0; i < 64; i++)
        {
            addrs[i] = pool.Alloc(Page);
        }

        pool.Free(addrs[37], Page);

        Assert.Equal(addrs[37], pool.Alloc(Page));
    }

    [Fact]
    public void FirstFit_WrapsAroundFromTheHint()
    {
        var pool = PagePool(128);
        var addrs = new ulong[128];
        for (int i = 0; i < 128; i++)
        {
            addrs[i] = pool.Alloc(Page);
        }

        // Free granule 3, then 100: the hint is now in word 1 (granule 100), so an alloc finds
        // 100; the next wraps to 3.
        pool.Free(addrs[3], Page);
        pool.Free(addrs[100], Page);

        Assert.Equal(addrs[100], pool.Alloc(Page));
        Assert.Equal(addrs[3], pool.Alloc(Page));
        Assert.Equal(0UL, pool.Alloc(Page));
    }

    // ---- queries ----

    [Fact]
    public void SizeAndAvail_SumOverChunksAndFollowAllocations()
    {
        var pool = new GenPool(PageOrder);
        pool.AddChunk(Base, 8 * Page, null);
        pool.AddChunk(Base + (100 * Page), 4 * Page, null);

        Assert.Equal(12 * Page, pool.Size);
        Assert.Equal(12 * Page, pool.Avail);

        ulong a = pool.Alloc(3 * Page);
        Assert.Equal(9 * Page, pool.Avail);

        pool.Free(a, 3 * Page);
        Assert.Equal(12 * Page, pool.Avail);
        Assert.Equal(12 * Page, pool.Size);
    }

    [Fact]
    public void HasAddr_IsTrueOnlyForRangesInsideOneChunk()
    {
        var pool = new GenPool(PageOrder);
        pool.AddChunk(Base, 4 * Page, null);
        pool.AddChunk(Base + (4 * Page), 4 * Page, null);

        Assert.True(pool.HasAddr(Base, 4 * Page));
        Assert.True(pool.HasAddr(Base + Page + 17, 10));
        Assert.True(pool.HasAddr(Base + (8 * Page) - 1, 1));
        Assert.True(pool.HasAddr(Base + (5 * Page), 0));
        Assert.False(pool.HasAddr(Base - 1, 1));
        Assert.False(pool.HasAddr(Base + (8 * Page), 1));
        Assert.False(pool.HasAddr(Base + (3 * Page), 2 * Page)); // spans two adjacent chunks
        Assert.False(pool.HasAddr(Base, ulong.MaxValue));
    }

    [Fact]
    public void VirtToPhys_AddsTheOffsetToTheChunksPhysicalAddress()
    {
        var pool = new GenPool(PageOrder);
        pool.AddChunk(Base, 0x8000_0000, 4 * Page, null);
        pool.AddChunk(Base + (16 * Page), 4 * Page, null);

        Assert.Equal(0x8000_0000UL, pool.VirtToPhys(Base));
        Assert.Equal(0x8000_0000UL + Page + 5, pool.VirtToPhys(Base + Page + 5));
        Assert.Equal(Base + (17 * Page), pool.VirtToPhys(Base + (17 * Page))); // identity overload
        Assert.Equal(ulong.MaxValue, pool.VirtToPhys(Base + (8 * Page)));
    }

    [Fact]
    public void ForEachChunk_ReportsEveryChunkInTheOrderAdded()
    {
        var pool = new GenPool(PageOrder);
        pool.AddChunk(Base + (16 * Page), 0x9000_0000, 2 * Page, "b");
        pool.AddChunk(Base, 4 * Page, "a");
        pool.Alloc(Page);

        var seen = new List<GenPoolChunkInfo>();
        pool.ForEachChunk(seen.Add);

        Assert.Equal(
            [
                new GenPoolChunkInfo(Base + (16 * Page), Base + (18 * Page) - 1, 0x9000_0000, 2 * Page, Page, "b"),
                new GenPoolChunkInfo(Base, Base + (4 * Page) - 1, Base, 4 * Page, 4 * Page, "a"),
            ],
            seen);
    }

    // ---- adding chunks ----

    [Fact]
    public void AddChunk_OverlappingAnExistingChunk_Throws()
    {
        var pool = PagePool(4);

        var ex = Assert.Throws<ArgumentException>(() => pool.AddChunk(Base + (3 * Page), 4 * Page, null));

        Assert.Contains("overlaps", ex.Message, StringComparison.Ordinal);
        Assert.Equal(4 * Page, pool.Size);
        Assert.Equal(1, pool.ChunkCount);
    }

    [Fact]
    public void AddChunk_ContainingAnExistingChunk_Throws()
    {
        var pool = new GenPool(PageOrder);
        pool.AddChunk(Base + (4 * Page), Page, null);

        Assert.Throws<ArgumentException>(() => pool.AddChunk(Base, 16 * Page, null));
    }

    [Fact]
    public void AddChunk_AdjacentToAnExistingChunk_IsAccepted()
    {
        var pool = PagePool(4);
        pool.AddChunk(Base + (4 * Page), 4 * Page, null);
        pool.AddChunk(Base - (4 * Page), 4 * Page, null);

        Assert.Equal(12 * Page, pool.Size);
    }

    [Fact]
    public void AddChunk_SizeNotAMultipleOfTheGranule_Throws()
    {
        var pool = new GenPool(PageOrder);

        var ex = Assert.Throws<ArgumentException>(() => pool.AddChunk(Base, Page + 1, null));

        Assert.Contains("multiple of the granule", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AddChunk_AtAddressZeroOrMisalignedOrEmpty_Throws()
    {
        var pool = new GenPool(PageOrder);

        Assert.Throws<ArgumentException>(() => pool.AddChunk(0, Page, null));
        Assert.Throws<ArgumentException>(() => pool.AddChunk(Base + 8, Page, null));
        Assert.Throws<ArgumentException>(() => pool.AddChunk(Base, 0, null));
        Assert.Throws<ArgumentException>(() => pool.AddChunk(ulong.MaxValue - Page + 1, 2 * Page, null));
        Assert.Equal(0UL, pool.Size);
    }

    // ---- algorithms ----

    /// <summary>Allocates <paramref name="pages"/> single pages and frees those in <paramref name="holes"/>.</summary>
    private static GenPool PoolWithHoles(GenPoolAlgorithm algorithm, int pages, params int[] holes)
    {
        var pool = PagePool((ulong)pages, algorithm);
        for (int i = 0; i < pages; i++)
        {
            Assert.Equal(Base + ((ulong)i * Page), pool.Alloc(Page));
        }

        foreach (int hole in holes)
        {
            pool.Free(Base + ((ulong)hole * Page), Page);
        }

        return pool;
    }

    [Fact]
    public void BestFit_PicksTheSmallestHoleThatFits()
    {
        // Holes: [2..5] (4 pages), [10..11] (2 pages), [20..22] (3 pages).
        var pool = PoolWithHoles(GenPoolAlgorithm.BestFit, 32, 2, 3, 4, 5, 10, 11, 20, 21, 22);

        Assert.Equal(Base + (10 * Page), pool.Alloc(2 * Page));
        Assert.Equal(Base + (20 * Page), pool.Alloc(3 * Page));
        Assert.Equal(Base + (2 * Page), pool.Alloc(Page));
    }

    [Fact]
    public void FirstFit_PicksTheFirstHoleThatFits()
    {
        var pool = PoolWithHoles(GenPoolAlgorithm.FirstFit, 32, 2, 3, 4, 5, 10, 11, 20, 21, 22);

        Assert.Equal(Base + (2 * Page), pool.Alloc(2 * Page));
    }

    [Fact]
    public void BestFit_PicksTheSmallestHoleAcrossChunks()
    {
        var pool = new GenPool(PageOrder, GenPoolAlgorithm.BestFit);
        pool.AddChunk(Base, 8 * Page, "roomy");
        pool.AddChunk(Base + (64 * Page), 2 * Page, "snug");

        Assert.Equal(Base + (64 * Page), pool.Alloc(2 * Page, out object? owner));
        Assert.Equal("snug", owner);
    }

    [Fact]
    public void OrderAlign_AlignsTheAddressToTheSizeRoundedUpToAPowerOfTwo()
    {
        var pool = new GenPool(PageOrder, GenPoolAlgorithm.FirstFitOrderAlign);
        pool.AddChunk(0x10_0000, 64 * Page, null);

        Assert.Equal(0x10_0000UL, pool.Alloc(Page));
        Assert.Equal(0x10_4000UL, pool.Alloc(3 * Page)); // 3 pages: 16 KiB alignment
        Assert.Equal(0x10_2000UL, pool.Alloc(2 * Page)); // 8 KiB alignment, fits before it
        Assert.Equal(0x11_0000UL, pool.Alloc(9 * Page)); // 64 KiB alignment
    }

    [Fact]
    public void OrderAlign_AlignsTheAddressEvenWhenTheChunkStartIsNotAligned()
    {
        var pool = new GenPool(PageOrder, GenPoolAlgorithm.FirstFitOrderAlign);
        pool.AddChunk(0x1000, 64 * Page, null);

        Assert.Equal(0x4000UL, pool.Alloc(4 * Page));
        Assert.Equal(0x1000UL, pool.Alloc(Page));
        Assert.Equal(0x2000UL, pool.Alloc(2 * Page));
    }

    // ---- search paths ----

    [Fact]
    public void Search_DefaultsToAutoAndAcceptsScalar()
    {
        var pool = new GenPool(PageOrder);
        Assert.Equal(GenPoolSearch.Auto, pool.Search);

        pool.Search = GenPoolSearch.Scalar;
        Assert.Equal(GenPoolSearch.Scalar, pool.Search);
    }

    [Fact]
    public void Search_Vector512_ThrowsNotSupportedWhereNotAccelerated()
    {
        var pool = new GenPool(PageOrder);
        if (Vector512.IsHardwareAccelerated)
        {
            pool.Search = GenPoolSearch.Vector512;
            Assert.Equal(GenPoolSearch.Vector512, pool.Search);
        }
        else
        {
            Assert.Throws<NotSupportedException>(() => pool.Search = GenPoolSearch.Vector512);
        }
    }

    [Theory]
    [MemberData(nameof(AvailableSearches))]
    public void FirstFit_MatchesTheReferenceModel_OnRandomAllocAndFree(GenPoolSearch search)
    {
        foreach (int granules in new[] { 1, 63, 64, 65, 1000, 4096, 5000 })
        {
            var random = new Random(1234 + granules);
            var pool = new GenPool(0) { Search = search };
            pool.AddChunk(0x10_0000, (ulong)granules, null);
            var model = new FirstFitModel(granules);
            var live = new List<(ulong Addr, int Size)>();

            for (int op = 0; op < 20_000; op++)
            {
                bool alloc = live.Count == 0 || random.Next(100) < (op % 2000 < 1000 ? 70 : 35);
                if (alloc)
                {
                    int size = random.Next(10) < 8 ? random.Next(1, 4) : random.Next(1, 200);
                    int expected = model.Alloc(size);
                    ulong got = pool.Alloc((ulong)size);
                    Assert.Equal(expected < 0 ? 0UL : 0x10_0000UL + (ulong)expected, got);
                    if (got != 0)
                    {
                        live.Add((got, size));
                    }
                }
                else
                {
                    int pick = random.Next(live.Count);
                    (ulong addr, int size) = live[pick];
                    live[pick] = live[^1];
                    live.RemoveAt(live.Count - 1);
                    pool.Free(addr, (ulong)size);
                    model.Free((int)(addr - 0x10_0000), size);
                }

                Assert.Equal((ulong)model.Avail, pool.Avail);
            }
        }
    }

    [Fact]
    public void FirstFit_GivesIdenticalAddressesOnEverySearchPath()
    {
        var sequences = new List<ulong[]>();
        foreach (GenPoolSearch search in AvailableSearches())
        {
            var random = new Random(99);
            var pool = new GenPool(PageOrder) { Search = search };
            pool.AddChunk(Base, 16384 * Page, null);
            var live = new List<(ulong Addr, ulong Size)>();
            var got = new ulong[30_000];
            for (int op = 0; op < got.Length; op++)
            {
                if (live.Count == 0 || random.Next(100) < 60)
                {
                    ulong size = (ulong)random.Next(1, 40) * Page;
                    ulong addr = pool.Alloc(size);
                    got[op] = addr;
                    if (addr != 0)
                    {
                        live.Add((addr, size));
                    }
                }
                else
                {
                    int pick = random.Next(live.Count);
                    pool.Free(live[pick].Addr, live[pick].Size);
                    live.RemoveAt(pick);
                }
            }

            sequences.Add(got);
        }

        for (int i = 1; i < sequences.Count; i++)
        {
            Assert.Equal(sequences[0], sequences[i]);
        }
    }

    [Theory]
    [MemberData(nameof(AvailableSearches))]
    public void BitmapSearch_MatchesANaiveScan_OnRandomBitmaps(GenPoolSearch search)
    {
        var pool = new GenPool(0) { Search = search };
        BitmapPath path = pool.Path;
        var random = new Random(7);
        for (int round = 0; round < 3000; round++)
        {
            int nbits = random.Next(1, 6000);
            ulong[] map = RandomBitmap(random, nbits);
            int nr = random.Next(10) < 7 ? random.Next(1, 4) : random.Next(1, 300);
            int start = random.Next(nbits);
            int alignMask = random.Next(4) == 0 ? (1 << random.Next(0, 6)) - 1 : 0;
            int alignOffset = alignMask == 0 ? 0 : random.Next(alignMask + 1);

            Assert.Equal(
                NaiveZeroArea(map, start, nbits, nr, alignMask, alignOffset),
                GenPoolBitmap.FindZeroArea(map, start, nbits, nr, alignMask, alignOffset, path));

            int best = GenPoolBitmap.FindBestFit(map, nbits, nr, path, out int length);
            int naiveBest = NaiveBestFit(map, nbits, nr, out int naiveLength);
            Assert.Equal(naiveBest, best);
            Assert.Equal(naiveLength, length);
        }
    }

    // ---- free errors ----

    [Fact]
    public void Free_OfAnUnallocatedAddress_ThrowsEinvalAndChangesNothing()
    {
        var pool = PagePool(8);
        ulong a = pool.Alloc(Page);
        ulong b = pool.Alloc(Page);
        pool.Free(a, Page);
        ulong availBefore = pool.Avail;

        var ex = Assert.Throws<NetmemException>(() => pool.Free(a, Page));

        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Contains("not allocated", ex.Message, StringComparison.Ordinal);
        Assert.Equal(availBefore, pool.Avail);
        pool.Free(b, Page); // b is still allocated
        Assert.Equal(pool.Size, pool.Avail);
    }

    [Fact]
    public void Free_OutsideEveryChunk_ThrowsEinval()
    {
        var pool = PagePool(8);
        pool.Alloc(Page);

        var below = Assert.Throws<NetmemException>(() => pool.Free(Base - Page, Page));
        var above = Assert.Throws<NetmemException>(() => pool.Free(Base + (8 * Page), Page));

        Assert.Equal(Errno.EINVAL, below.Errno);
        Assert.Equal(Errno.EINVAL, above.Errno);
        Assert.Contains("no chunk", above.Message, StringComparison.Ordinal);
        Assert.Equal(7 * Page, pool.Avail);
    }

    [Fact]
    public void Free_OfARunOnlyHalfAllocated_ThrowsAndChangesNothing()
    {
        var pool = PagePool(8);
        ulong a = pool.Alloc(2 * Page);
        ulong b = pool.Alloc(2 * Page);
        pool.Free(a, 2 * Page);
        ulong availBefore = pool.Avail;

        // [a, a + 4 pages): the first half is free, the second half is b.
        var ex = Assert.Throws<NetmemException>(() => pool.Free(a, 4 * Page));
        // [b, b + 4 pages): the first half is b, the second half is free.
        Assert.Throws<NetmemException>(() => pool.Free(b, 4 * Page));

        Assert.Equal(Errno.EINVAL, ex.Errno);
        Assert.Equal(availBefore, pool.Avail);
        pool.Free(b, 2 * Page);
        Assert.Equal(pool.Size, pool.Avail);
    }

    [Fact]
    public void Free_OfARunCrossingAWordWithAGap_ThrowsAndChangesNothing()
    {
        var pool = PagePool(256);
        for (int i = 0; i < 256; i++)
        {
            pool.Alloc(Page);
        }

        pool.Free(Base + (130 * Page), Page);

        Assert.Throws<NetmemException>(() => pool.Free(Base + (60 * Page), 100 * Page));
        Assert.Equal(Page, pool.Avail);
        Assert.Equal(Base + (130 * Page), pool.Alloc(Page));
        Assert.Equal(0UL, pool.Avail);
    }

    [Fact]
    public void Free_RunningPastTheEndOfItsChunk_Throws()
    {
        var pool = PagePool(4);
        pool.Alloc(4 * Page);

        Assert.Throws<NetmemException>(() => pool.Free(Base + (2 * Page), 4 * Page));
        Assert.Equal(0UL, pool.Avail);
    }

    [Fact]
    public void Free_OffAGranuleBoundaryOrOfZeroBytes_Throws()
    {
        var pool = PagePool(4);
        ulong a = pool.Alloc(Page);

        Assert.Throws<NetmemException>(() => pool.Free(a + 8, Page));
        Assert.Throws<NetmemException>(() => pool.Free(a, 0));
        Assert.Equal(3 * Page, pool.Avail);
    }

    [Fact]
    public void ClearRun_StoppingAtAClearBit_ReportsWhatItLeftSoItCanBeRestored()
    {
        ulong[] map = [ulong.MaxValue, ulong.MaxValue & ~(1UL << 10)];

        int remain = GenPoolBitmap.ClearRun(map, 32, 64);

        Assert.Equal(32, remain); // the first word's 32 bits were cleared; the second word refused
        Assert.Equal(0xFFFF_FFFFUL, map[0]);
        GenPoolBitmap.RestoreRun(map, 32, 64 - remain);
        Assert.Equal(ulong.MaxValue, map[0]);
        Assert.Equal(ulong.MaxValue & ~(1UL << 10), map[1]);
    }

    // ---- dispose ----

    [Fact]
    public void Dispose_WithAllocationsOutstanding_ThrowsBusyReportingSizeAndAvail()
    {
        var pool = PagePool(8);
        ulong a = pool.Alloc(3 * Page);

        var ex = Assert.Throws<GenPoolBusyException>(pool.Dispose);

        Assert.Equal(Errno.EBUSY, ex.Errno);
        Assert.Equal(8 * Page, ex.Size);
        Assert.Equal(5 * Page, ex.Avail);
        Assert.Equal(3 * Page, ex.Outstanding);
        Assert.Contains("size 32768", ex.Message, StringComparison.Ordinal);
        Assert.Contains("avail 20480", ex.Message, StringComparison.Ordinal);

        // Still usable; clean now, it disposes.
        Assert.Equal(Base + (3 * Page), pool.Alloc(Page));
        pool.Free(Base + (3 * Page), Page);
        pool.Free(a, 3 * Page);
        pool.Dispose();
    }

    [Fact]
    public void Dispose_WhenClean_MakesLaterAllocsThrowObjectDisposed()
    {
        var pool = PagePool(8);
        pool.Free(pool.Alloc(Page), Page);

        pool.Dispose();
        pool.Dispose();

        Assert.Throws<ObjectDisposedException>(() => pool.Alloc(Page));
        Assert.Throws<ObjectDisposedException>(() => pool.AddChunk(Base + (64 * Page), Page, null));
    }

    // ---- concurrency ----

    [Theory]
    [InlineData(GenPoolAlgorithm.FirstFit)]
    [InlineData(GenPoolAlgorithm.BestFit)]
    [InlineData(GenPoolAlgorithm.FirstFitOrderAlign)]
    public void ConcurrentAllocAndFree_NeverHandOutAGranuleTwice_AndConserveAvail(GenPoolAlgorithm algorithm)
    {
        const int Threads = 4;
        const int OpsPerThread = 20_000;
        const int GranulesPerChunk = 192;
        var pool = new GenPool(PageOrder, algorithm);
        pool.AddChunk(Base, GranulesPerChunk * Page, null);
        pool.AddChunk(Base + (1024 * Page), GranulesPerChunk * Page, null);

        // One flag per granule of both chunks, and the span between them (never used).
        var owned = new int[1024 + GranulesPerChunk];
        int doubleHandOuts = 0;
        int badFrees = 0;
        long allocs = 0;
        using var start = new Barrier(Threads);

        void Worker(int seed)
        {
            var random = new Random(seed);
            var mine = new (ulong Addr, int Pages)[64];
            int count = 0;
            start.SignalAndWait();
            for (int op = 0; op < OpsPerThread; op++)
            {
                if (count < mine.Length && (count == 0 || random.Next(2) == 0))
                {
                    int pages = random.Next(1, 5);
                    ulong addr = pool.Alloc((ulong)pages * Page);
                    if (addr == 0)
                    {
                        continue;
                    }

                    Interlocked.Increment(ref allocs);
                    int first = (int)((addr - Base) / Page);
                    for (int g = first; g < first + pages; g++)
                    {
                        if (Interlocked.CompareExchange(ref owned[g], 1, 0) != 0)
                        {
                            Interlocked.Increment(ref doubleHandOuts);
                        }
                    }

                    mine[count++] = (addr, pages);
                }
                else
                {
                    int pick = random.Next(count);
                    (ulong addr, int pages) = mine[pick];
                    mine[pick] = mine[--count];
                    int first = (int)((addr - Base) / Page);
                    for (int g = first; g < first + pages; g++)
                    {
                        if (Interlocked.Exchange(ref owned[g], 0) != 1)
                        {
                            Interlocked.Increment(ref badFrees);
                        }
                    }

                    pool.Free(addr, (ulong)pages * Page);
                }
            }

            while (count > 0)
            {
                (ulong addr, int pages) = mine[--count];
                int first = (int)((addr - Base) / Page);
                for (int g = first; g < first + pages; g++)
                {
                    Interlocked.Exchange(ref owned[g], 0);
                }

                pool.Free(addr, (ulong)pages * Page);
            }
        }

        var threads = new Thread[Threads];
        for (int t = 0; t < Threads; t++)
        {
            int seed = 1000 + t;
            threads[t] = new Thread(() => Worker(seed));
            threads[t].Start();
        }

        foreach (Thread thread in threads)
        {
            thread.Join();
        }

        Assert.Equal(0, doubleHandOuts);
        Assert.Equal(0, badFrees);
        Assert.True(allocs > Threads * OpsPerThread / 4, $"only {allocs} allocations succeeded");
        Assert.Equal(pool.Size, pool.Avail);
        Assert.Equal(2 * GranulesPerChunk * Page, pool.Size);
        pool.Dispose();
    }

    [Fact]
    public void AddChunk_WhileOtherThreadsAllocate_MakesTheNewChunkAvailable()
    {
        var pool = new GenPool(PageOrder);
        pool.AddChunk(Base, 4 * Page, "first");
        using var stop = new ManualResetEventSlim();
        long allocated = 0;
        var worker = new Thread(() =>
        {
            while (!stop.IsSet)
            {
                ulong a = pool.Alloc(Page);
                if (a != 0)
                {
                    Interlocked.Increment(ref allocated);
                    pool.Free(a, Page);
                }
            }
        });
        worker.Start();

        for (int i = 1; i <= 64; i++)
        {
            pool.AddChunk(Base + ((ulong)i * 16 * Page), 4 * Page, i);
        }

        stop.Set();
        worker.Join();

        Assert.Equal(65, pool.ChunkCount);
        Assert.Equal(65 * 4 * Page, pool.Size);
        Assert.Equal(pool.Size, pool.Avail);
        for (int i = 0; i < 65 * 4; i++)
        {
            Assert.NotEqual(0UL, pool.Alloc(Page));
        }

        Assert.Equal(0UL, pool.Alloc(Page));
    }

    // ---- reference model and helpers ----

    /// <summary>
    /// First fit as documented: from the hint word to the end, then from the start for runs that
    /// begin before the hint; the hint moves to the word where an allocation ended (wrapping)
    /// or a free began.
    /// </summary>
    private sealed class FirstFitModel(int granules)
    {
        private readonly bool[] _used = new bool[granules];
        private readonly int _words = (granules + 63) / 64;
        private int _hintWord;

        public int Avail { get; private set; } = granules;

        public int Alloc(int nr)
        {
            int hintBit = _hintWord * 64;
            int start = Find(hintBit, _used.Length, nr);
            if (start < 0 && hintBit > 0)
            {
                start = Find(0, Math.Min(_used.Length, hintBit + nr - 1), nr);
            }

            if (start < 0)
            {
                return -1;
            }

            for (int i = start; i < start + nr; i++)
            {
                _used[i] = true;
            }

            Avail -= nr;
            _hintWord = (start + nr) / 64;
            if (_hintWord >= _words)
            {
                _hintWord = 0;
            }

            return start;
        }

        public void Free(int start, int nr)
        {
            for (int i = start; i < start + nr; i++)
            {
                Assert.True(_used[i]);
                _used[i] = false;
            }

            Avail += nr;
            _hintWord = start / 64;
        }

        private int Find(int from, int limit, int nr)
        {
            for (int i = from; i + nr <= limit; i++)
            {
                int j = 0;
                while (j < nr && !_used[i + j])
                {
                    j++;
                }

                if (j == nr)
                {
                    return i;
                }
            }

            return -1;
        }
    }

    /// <summary>
    /// A bitmap of uniform stretches (all set, all clear, or random at a random density), so the
    /// vector paths meet long runs of whole words as well as mixed ones; tail bits set.
    /// </summary>
    private static ulong[] RandomBitmap(Random random, int nbits)
    {
        var map = new ulong[(nbits + 63) / 64];
        int bit = 0;
        while (bit < nbits)
        {
            int length = Math.Min(nbits - bit, random.Next(1, 1500));
            int kind = random.Next(4);
            double density = random.NextDouble();
            for (int i = bit; i < bit + length; i++)
            {
                bool set = kind switch
                {
                    0 => true,
                    1 => false,
                    _ => random.NextDouble() < density,
                };
                if (set)
                {
                    map[i / 64] |= 1UL << (i % 64);
                }
            }

            bit += length;
        }

        for (int i = nbits; i < map.Length * 64; i++)
        {
            map[i / 64] |= 1UL << (i % 64);
        }

        return map;
    }

    private static bool IsSet(ulong[] map, int i) => (map[i / 64] & (1UL << (i % 64))) != 0;

    private static int NaiveZeroArea(ulong[] map, int start, int limit, int nr, int alignMask, int alignOffset)
    {
        for (int i = start; i + nr <= limit; i++)
        {
            if (((i + alignOffset) & alignMask) != 0)
            {
                continue;
            }

            int j = 0;
            while (j < nr && !IsSet(map, i + j))
            {
                j++;
            }

            if (j == nr)
            {
                return i;
            }
        }

        return -1;
    }

    private static int NaiveBestFit(ulong[] map, int nbits, int nr, out int length)
    {
        int best = -1;
        length = 0;
        int i = 0;
        while (i < nbits)
        {
            if (IsSet(map, i))
            {
                i++;
                continue;
            }

            int end = i;
            while (end < nbits && !IsSet(map, end))
            {
                end++;
            }

            int hole = end - i;
            if (hole >= nr && (best < 0 || hole < length))
            {
                best = i;
                length = hole;
            }

            i = end;
        }

        return best;
    }
}
