using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Netmem.Native;

namespace Netmem.Genalloc;

/// <summary>
/// A bitmap allocator over address ranges, in the manner of the kernel's genalloc
/// (<c>lib/genalloc.c</c>): the pool is a list of chunks, each an address range with an owner
/// object and one bit per granule of <c>1 &lt;&lt; minAllocOrder</c> bytes. Addresses are plain
/// numbers; the pool never touches the memory they name.
/// </summary>
/// <remarks>
/// <para>
/// Concurrency. <see cref="Alloc(ulong, out object?)"/> and <see cref="Free"/> may be called
/// from any number of threads at once and take no lock. An allocation searches a chunk's
/// bitmap without synchronisation, then claims the run it found by setting its bits one word at
/// a time, each word with a compare-and-swap that succeeds only if none of the run's bits in
/// that word is set. If another thread got to one of those bits first, the words already set
/// are cleared again and the search restarts (the kernel's <c>bitmap_set_ll</c> and retry). A
/// free first checks that every bit of the run is set, then clears the words with a
/// compare-and-swap that succeeds only if all the run's bits in the word are still set; if one
/// is not (a racing double free), the words it cleared are set back and it throws. A chunk's
/// <see cref="Avail"/> counter is adjusted with <see cref="Interlocked.Add(ref long, long)"/>
/// after the bitmap change, so it may lag the bitmap briefly but never drifts.
/// </para>
/// <para>
/// Chunks. The chunk list is an immutable array replaced on <see cref="AddChunk(ulong, ulong, ulong, object?)"/>
/// (copy-on-write under a lock that only adders take) and published with
/// <see cref="Volatile.Write{T}(ref T, T)"/>; an allocation reads it once and works on that
/// snapshot, so chunks can be added while allocations run. Chunks are tried in the order they
/// were added (the kernel tries the newest first). Chunks are never removed.
/// </para>
/// <para>
/// Next fit. Each chunk keeps a hint, the bitmap word where the last first-fit allocation ended
/// or the last free began. First fit searches from the hint to the chunk's end, then from the
/// chunk's start to the hint: "first fit" means the first fit at or after the hint, wrapping
/// around, which keeps one-granule alloc and free cheap however large and full the chunk is.
/// Best fit ignores the hint and scans everything.
/// </para>
/// <para>
/// Search. The bitmap is scanned for a run of zero bits; words that cannot start a run (all
/// ones) or end one (all zeros) are skipped with <see cref="Vector512"/> or
/// <see cref="Vector256"/> compares, 16 or 8 words a step, or one word at a time on the scalar
/// path (<see cref="Search"/>). All paths give identical results.
/// </para>
/// <para>
/// Errors. Running out is not an error: <see cref="Alloc(ulong)"/> returns 0, so no chunk may
/// start at address 0. Freeing what is not allocated, or outside every chunk, throws
/// <see cref="NetmemException"/> with EINVAL and changes nothing.
/// </para>
/// </remarks>
public sealed class GenPool : IDisposable
{
    /// <summary>The largest number of granules in one chunk.</summary>
    internal const int MaxChunkBits = 1 << 30;

    /// <summary>The chunks, replaced whole on add; see the remarks on the type.</summary>
    private sealed class ChunkTable(GenPoolChunk[] inOrder, GenPoolChunk[] byAddress, ulong size)
    {
        /// <summary>In the order added: the order allocations try them.</summary>
        public readonly GenPoolChunk[] InOrder = inOrder;

        /// <summary>Sorted by start address, for the binary search of <see cref="Free"/> and the queries.</summary>
        public readonly GenPoolChunk[] ByAddress = byAddress;

        /// <summary>The sum of the chunks' sizes.</summary>
        public readonly ulong Size = size;
    }

    /// <summary>log2 of the granule: one bitmap bit per 1 &lt;&lt; order bytes.</summary>
    private readonly int _order;

    /// <summary>Granule size minus one, for alignment checks and rounding.</summary>
    private readonly ulong _granuleMask;

    /// <summary>How allocations choose their place.</summary>
    private readonly GenPoolAlgorithm _algorithm;

    /// <summary>The name used in messages and diagnostics.</summary>
    private readonly string _name;

    /// <summary>Serialises <see cref="AddChunk(ulong, ulong, ulong, object?)"/>; allocations never take it.</summary>
    private readonly Lock _addLock = new();

    /// <summary>The current chunk snapshot; read with <see cref="Volatile.Read{T}(ref readonly T)"/>.</summary>
    private ChunkTable _table = new([], [], 0);

    /// <summary>The search path requested by the caller.</summary>
    private GenPoolSearch _search;

    /// <summary>The path actually used, <see cref="GenPoolSearch.Auto"/> resolved.</summary>
    private BitmapPath _path;

    /// <summary>Set by a successful <see cref="Dispose"/>.</summary>
    private volatile bool _disposed;

    /// <summary>
    /// Creates an empty pool.
    /// </summary>
    /// <param name="minAllocOrder">log2 of the granule in bytes (0 to 62): 12 gives one bit per 4 KiB.</param>
    /// <param name="algorithm">How allocations choose their place.</param>
    /// <param name="name">A name for messages; defaults to <c>"gen_pool"</c>.</param>
    public GenPool(int minAllocOrder, GenPoolAlgorithm algorithm = GenPoolAlgorithm.FirstFit, string? name = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(minAllocOrder);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minAllocOrder, 62);
        if (!Enum.IsDefined(algorithm))
        {
            throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "unknown gen pool algorithm");
        }

        _order = minAllocOrder;
        _granuleMask = (1UL << minAllocOrder) - 1;
        _algorithm = algorithm;
        _name = name ?? "gen_pool";
        Search = GenPoolSearch.Auto;
    }

    /// <summary>The pool's name, as given to the constructor.</summary>
    public string Name => _name;

    /// <summary>log2 of the granule in bytes.</summary>
    public int MinAllocOrder => _order;

    /// <summary>The allocation algorithm.</summary>
    public GenPoolAlgorithm Algorithm => _algorithm;

    /// <summary>
    /// The bitmap search path. <see cref="GenPoolSearch.Auto"/> (the default) picks the widest
    /// accelerated one. Setting <see cref="GenPoolSearch.Vector512"/> or
    /// <see cref="GenPoolSearch.Vector256"/> where that width is not hardware accelerated throws
    /// <see cref="NotSupportedException"/> rather than quietly measuring something else. May be
    /// changed while allocations run; each search uses one path throughout.
    /// </summary>
    public GenPoolSearch Search
    {
        get => _search;
        set
        {
            _path = Resolve(value);
            _search = value;
        }
    }

    /// <summary>The search path in use, <see cref="GenPoolSearch.Auto"/> resolved.</summary>
    internal BitmapPath Path => _path;

    /// <summary>
    /// Whether first fit starts at the chunks' next-fit hints (the default). Off, every search
    /// starts at the chunk's first granule, as the kernel's does; for benchmarks and tests.
    /// </summary>
    internal bool UseHint { get; set; } = true;

    /// <summary>The total size of all chunks in bytes (the kernel's <c>gen_pool_size</c>).</summary>
    public ulong Size => Volatile.Read(ref _table).Size;

    /// <summary>
    /// The bytes not allocated, summed over the chunks (the kernel's <c>gen_pool_avail</c>).
    /// With allocations running concurrently it is a moment's sum, not a snapshot.
    /// </summary>
    public ulong Avail
    {
        get
        {
            ulong avail = 0;
            foreach (GenPoolChunk chunk in Volatile.Read(ref _table).InOrder)
            {
                avail += (ulong)Volatile.Read(ref chunk.Avail);
            }

            return avail;
        }
    }

    /// <summary>The number of chunks.</summary>
    public int ChunkCount => Volatile.Read(ref _table).InOrder.Length;

    /// <summary>
    /// Adds the range [<paramref name="virt"/>, <paramref name="virt"/> + <paramref name="size"/>)
    /// as a chunk whose physical address equals its address (an identity mapping, as for an
    /// IOVA range where the address handed out is the DMA address).
    /// </summary>
    /// <inheritdoc cref="AddChunk(ulong, ulong, ulong, object?)"/>
    public void AddChunk(ulong virt, ulong size, object? owner) => AddChunk(virt, virt, size, owner);

    /// <summary>
    /// Adds the range [<paramref name="virt"/>, <paramref name="virt"/> + <paramref name="size"/>),
    /// mapped at <paramref name="phys"/>, as a chunk owned by <paramref name="owner"/> (the
    /// kernel's <c>gen_pool_add_owner</c>). Safe to call while other threads allocate and free.
    /// </summary>
    /// <param name="virt">The chunk's first address: not 0 (the failure value of <see cref="Alloc(ulong)"/>), a multiple of the granule.</param>
    /// <param name="phys">The physical address <paramref name="virt"/> maps to, for <see cref="VirtToPhys"/>.</param>
    /// <param name="size">The chunk's size in bytes: a non-zero multiple of the granule.</param>
    /// <param name="owner">An object handed back by <see cref="Alloc(ulong, out object?)"/> for memory from this chunk.</param>
    /// <exception cref="ArgumentException">The range is empty, misaligned, starts at 0, wraps around, is too large, or overlaps a chunk already in the pool.</exception>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public void AddChunk(ulong virt, ulong phys, ulong size, object? owner)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ulong granule = _granuleMask + 1;
        if (size == 0)
        {
            throw new ArgumentException($"gen pool '{_name}': chunk size must not be zero", nameof(size));
        }

        if ((size & _granuleMask) != 0)
        {
            throw new ArgumentException($"gen pool '{_name}': chunk size {size} is not a multiple of the granule ({granule} bytes)", nameof(size));
        }

        if (virt == 0)
        {
            throw new ArgumentException($"gen pool '{_name}': a chunk cannot start at address 0, which Alloc returns for failure", nameof(virt));
        }

        if ((virt & _granuleMask) != 0)
        {
            throw new ArgumentException($"gen pool '{_name}': chunk address {Hex(virt)} is not aligned to the granule ({granule} bytes)", nameof(virt));
        }

        if (size - 1 > ulong.MaxValue - virt)
        {
            throw new ArgumentException($"gen pool '{_name}': chunk {Hex(virt)} + {size} wraps past the end of the address space", nameof(size));
        }

        ulong nbits = size >> _order;
        if (nbits > MaxChunkBits)
        {
            throw new ArgumentException($"gen pool '{_name}': chunk of {size} bytes has {nbits} granules, more than the {MaxChunkBits} one chunk may hold", nameof(size));
        }

        var chunk = new GenPoolChunk(virt, phys, size, (int)nbits, owner);
        lock (_addLock)
        {
            ChunkTable old = _table;
            int at = UpperBound(old.ByAddress, virt);
            if (at > 0 && old.ByAddress[at - 1].EndAddr >= virt)
            {
                throw new ArgumentException(OverlapMessage(old.ByAddress[at - 1], chunk), nameof(virt));
            }

            if (at < old.ByAddress.Length && old.ByAddress[at].StartAddr <= chunk.EndAddr)
            {
                throw new ArgumentException(OverlapMessage(old.ByAddress[at], chunk), nameof(virt));
            }

            var inOrder = new GenPoolChunk[old.InOrder.Length + 1];
            old.InOrder.CopyTo(inOrder, 0);
            inOrder[^1] = chunk;

            var byAddress = new GenPoolChunk[old.ByAddress.Length + 1];
            Array.Copy(old.ByAddress, 0, byAddress, 0, at);
            byAddress[at] = chunk;
            Array.Copy(old.ByAddress, at, byAddress, at + 1, old.ByAddress.Length - at);

            // Publish the chunk fully built: readers load the table without a lock.
            Volatile.Write(ref _table, new ChunkTable(inOrder, byAddress, old.Size + size));
        }
    }

    /// <summary>
    /// Allocates <paramref name="size"/> bytes, rounded up to the granule (the kernel's
    /// <c>gen_pool_alloc</c>). Returns the address, or 0 if no chunk has room (or
    /// <paramref name="size"/> is 0). Thread-safe and lock-free; allocates nothing on the GC heap.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong Alloc(ulong size) => Alloc(size, out _);

    /// <summary>
    /// Allocates <paramref name="size"/> bytes, rounded up to the granule, and reports the owner
    /// of the chunk it came from (the kernel's <c>gen_pool_alloc_owner</c>). Returns the address,
    /// or 0 with <paramref name="owner"/> null if no chunk has room.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The pool was disposed.</exception>
    public ulong Alloc(ulong size, out object? owner)
    {
        if (_disposed)
        {
            ThrowDisposed();
        }

        owner = null;
        int nr = GranulesFor(size);
        if (nr <= 0)
        {
            return 0;
        }

        GenPoolChunk[] chunks = Volatile.Read(ref _table).InOrder;
        if (_algorithm == GenPoolAlgorithm.BestFit)
        {
            return AllocBestFit(chunks, nr, out owner);
        }

        int alignMask = _algorithm == GenPoolAlgorithm.FirstFitOrderAlign
            ? (int)(BitOperations.RoundUpToPowerOf2((uint)nr) - 1)
            : 0;
        long bytes = (long)nr << _order;
        BitmapPath path = _path;
        bool useHint = UseHint;
        foreach (GenPoolChunk chunk in chunks)
        {
            if (Volatile.Read(ref chunk.Avail) < bytes)
            {
                continue;
            }

            int start = chunk.ClaimFirstFit(nr, alignMask, _order, useHint, path);
            if (start >= 0)
            {
                Interlocked.Add(ref chunk.Avail, -bytes);
                owner = chunk.Owner;
                return chunk.StartAddr + ((ulong)start << _order);
            }
        }

        return 0;
    }

    /// <summary>Best fit over every chunk: search all, claim the best, start over if it was taken meanwhile.</summary>
    private ulong AllocBestFit(GenPoolChunk[] chunks, int nr, out object? owner)
    {
        long bytes = (long)nr << _order;
        BitmapPath path = _path;
        while (true)
        {
            GenPoolChunk? best = null;
            int bestStart = -1;
            int bestLength = int.MaxValue;
            foreach (GenPoolChunk chunk in chunks)
            {
                if (Volatile.Read(ref chunk.Avail) < bytes)
                {
                    continue;
                }

                int start = GenPoolBitmap.FindBestFit(chunk.Bits, chunk.NBits, nr, path, out int length);
                if (start >= 0 && length < bestLength)
                {
                    best = chunk;
                    bestStart = start;
                    bestLength = length;
                    if (length == nr)
                    {
                        break;
                    }
                }
            }

            if (best is null)
            {
                owner = null;
                return 0;
            }

            if (best.TryClaim(bestStart, nr))
            {
                Interlocked.Add(ref best.Avail, -bytes);
                owner = best.Owner;
                return best.StartAddr + ((ulong)bestStart << _order);
            }
        }
    }

    /// <summary>
    /// Frees <paramref name="size"/> bytes at <paramref name="addr"/>, as allocated (the kernel's
    /// <c>gen_pool_free</c>). Thread-safe and lock-free. Works after <see cref="Dispose"/> too,
    /// though then nothing is allocated and every free is refused.
    /// </summary>
    /// <exception cref="NetmemException">
    /// EINVAL, with nothing changed: <paramref name="size"/> is 0, the range is not inside one
    /// chunk, <paramref name="addr"/> is not on a granule boundary of its chunk, or some granule
    /// of the range is not allocated (a double free, or a free larger than the allocation).
    /// </exception>
    public void Free(ulong addr, ulong size)
    {
        int nr = GranulesFor(size);
        if (nr <= 0)
        {
            ThrowFree(addr, size, size == 0 ? "size is zero" : "size is larger than any chunk");
        }

        GenPoolChunk? chunk = FindChunk(Volatile.Read(ref _table).ByAddress, addr);
        if (chunk is null)
        {
            ThrowFree(addr, size, "address is in no chunk of the pool");
        }

        ulong offset = addr - chunk.StartAddr;
        if ((offset & _granuleMask) != 0)
        {
            ThrowFree(addr, size, "address is not on a granule boundary");
        }

        int start = (int)(offset >> _order);
        if ((long)start + nr > chunk.NBits)
        {
            ThrowFree(addr, size, $"range runs past the end of its chunk ({Hex(chunk.EndAddr)})");
        }

        // Check first, so a bad free changes nothing in the common (non-racing) case.
        if (!GenPoolBitmap.IsRunSet(chunk.Bits, start, nr))
        {
            ThrowFree(addr, size, "range is not allocated (double free, or larger than what was allocated)");
        }

        int remain = GenPoolBitmap.ClearRun(chunk.Bits, start, nr);
        if (remain != 0)
        {
            // A racing free of the same range cleared a bit between the check and here.
            GenPoolBitmap.RestoreRun(chunk.Bits, start, nr - remain);
            ThrowFree(addr, size, "range was freed concurrently by another thread");
        }

        Interlocked.Add(ref chunk.Avail, (long)nr << _order);
        if (UseHint)
        {
            chunk.UpdateHint(start >> 6);
        }
    }

    /// <summary>
    /// Whether [<paramref name="addr"/>, <paramref name="addr"/> + <paramref name="size"/>) lies
    /// entirely inside one chunk, allocated or not (the kernel's <c>gen_pool_has_addr</c>). A
    /// <paramref name="size"/> of 0 checks <paramref name="addr"/> alone.
    /// </summary>
    public bool HasAddr(ulong addr, ulong size)
    {
        GenPoolChunk? chunk = FindChunk(Volatile.Read(ref _table).ByAddress, addr);
        return chunk is not null && chunk.Contains(addr, size);
    }

    /// <summary>
    /// The physical address of <paramref name="addr"/>: its chunk's physical address plus the
    /// offset in the chunk (the kernel's <c>gen_pool_virt_to_phys</c>). Returns
    /// <see cref="ulong.MaxValue"/> (the kernel's -1) if <paramref name="addr"/> is in no chunk.
    /// </summary>
    public ulong VirtToPhys(ulong addr)
    {
        GenPoolChunk? chunk = FindChunk(Volatile.Read(ref _table).ByAddress, addr);
        return chunk is null ? ulong.MaxValue : chunk.PhysAddr + (addr - chunk.StartAddr);
    }

    /// <summary>
    /// Calls <paramref name="visit"/> with a snapshot of each chunk, in the order they were added
    /// (the kernel's <c>gen_pool_for_each_chunk</c>). Chunks added during the walk are not visited.
    /// </summary>
    public void ForEachChunk(Action<GenPoolChunkInfo> visit)
    {
        ArgumentNullException.ThrowIfNull(visit);
        foreach (GenPoolChunk chunk in Volatile.Read(ref _table).InOrder)
        {
            visit(new GenPoolChunkInfo(
                chunk.StartAddr,
                chunk.EndAddr,
                chunk.PhysAddr,
                chunk.Size,
                (ulong)Volatile.Read(ref chunk.Avail),
                chunk.Owner));
        }
    }

    /// <summary>
    /// Marks the pool disposed if nothing is allocated (the kernel's <c>gen_pool_destroy</c>,
    /// which BUGs instead). Disposing twice does nothing. The caller must not race this with
    /// <see cref="Alloc(ulong)"/>: an allocation that started before may still complete.
    /// </summary>
    /// <exception cref="GenPoolBusyException">
    /// Allocations are outstanding (<see cref="Avail"/> != <see cref="Size"/>); the exception
    /// reports both, and the pool stays usable.
    /// </exception>
    [SuppressMessage("Design", "CA1065:Do not raise exceptions in unexpected locations", Justification = "Disposing a pool with memory still handed out is a caller bug that must not pass silently, as the kernel's gen_pool_destroy BUGs.")]
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        ulong size = Size;
        ulong avail = Avail;
        if (avail != size)
        {
            throw new GenPoolBusyException(_name, size, avail);
        }

        _disposed = true;
    }

    /// <summary>
    /// For benchmarks and tests: the first-fit search of chunk <paramref name="chunkIndex"/> from
    /// its first granule, ignoring the hint and claiming nothing. Returns the granule index or -1.
    /// </summary>
    internal int FindFirstFit(int chunkIndex, int nr)
    {
        GenPoolChunk chunk = Volatile.Read(ref _table).InOrder[chunkIndex];
        return GenPoolBitmap.FindZeroArea(chunk.Bits, 0, chunk.NBits, nr, 0, 0, _path);
    }

    /// <summary>For benchmarks and tests: moves every chunk's next-fit hint back to its first word.</summary>
    internal void ResetHints()
    {
        foreach (GenPoolChunk chunk in Volatile.Read(ref _table).InOrder)
        {
            Volatile.Write(ref chunk.HintWord, 0);
        }
    }

    /// <summary>The number of granules <paramref name="size"/> bytes take; 0 for 0, -1 if more than a chunk may hold.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int GranulesFor(ulong size)
    {
        ulong granules = (size >> _order) + ((size & _granuleMask) != 0 ? 1UL : 0UL);
        return granules <= MaxChunkBits ? (int)granules : -1;
    }

    /// <summary>The chunk holding <paramref name="addr"/>, by binary search, or null.</summary>
    private static GenPoolChunk? FindChunk(GenPoolChunk[] byAddress, ulong addr)
    {
        int at = UpperBound(byAddress, addr) - 1;
        if (at < 0)
        {
            return null;
        }

        GenPoolChunk chunk = byAddress[at];
        return addr <= chunk.EndAddr ? chunk : null;
    }

    /// <summary>The index of the first chunk starting after <paramref name="addr"/>.</summary>
    private static int UpperBound(GenPoolChunk[] byAddress, ulong addr)
    {
        int lo = 0;
        int hi = byAddress.Length;
        while (lo < hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            if (byAddress[mid].StartAddr <= addr)
            {
                lo = mid + 1;
            }
            else
            {
                hi = mid;
            }
        }

        return lo;
    }

    private static BitmapPath Resolve(GenPoolSearch search) => search switch
    {
        GenPoolSearch.Auto => Vector512.IsHardwareAccelerated ? BitmapPath.Vector512
            : Vector256.IsHardwareAccelerated ? BitmapPath.Vector256
            : BitmapPath.Scalar,
        GenPoolSearch.Scalar => BitmapPath.Scalar,
        GenPoolSearch.Vector256 => Vector256.IsHardwareAccelerated
            ? BitmapPath.Vector256
            : throw new NotSupportedException("Vector256 is not hardware accelerated on this machine"),
        GenPoolSearch.Vector512 => Vector512.IsHardwareAccelerated
            ? BitmapPath.Vector512
            : throw new NotSupportedException("Vector512 is not hardware accelerated on this machine"),
        _ => throw new ArgumentOutOfRangeException(nameof(search), search, "unknown gen pool search path"),
    };

    private static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);

    [DoesNotReturn]
    private void ThrowDisposed() => throw new ObjectDisposedException(nameof(GenPool), $"gen pool '{_name}' was disposed");

    [DoesNotReturn]
    private void ThrowFree(ulong addr, ulong size, string why) =>
        throw new NetmemException(Errno.EINVAL, $"gen pool '{_name}': cannot free {size} bytes at {Hex(addr)}: {why}");

    private string OverlapMessage(GenPoolChunk existing, GenPoolChunk added) =>
        $"gen pool '{_name}': chunk [{Hex(added.StartAddr)}, {Hex(added.EndAddr)}] overlaps chunk [{Hex(existing.StartAddr)}, {Hex(existing.EndAddr)}] already in the pool";
}
