using System.Runtime.CompilerServices;
using Netmem.Native;

namespace Netmem;

/// <summary>
/// Pages of order 0 to 5 (4 KiB to 128 KiB) carved from memory mapped in large chunks, with their
/// descriptors in a parallel table so a data address maps to its descriptor in O(1).
/// </summary>
/// <remarks>
/// The arena reserves its whole limit of address space once (<c>MAP_NORESERVE</c>: the kernel
/// backs it only when touched), and a descriptor table with one 64-byte slot per 4 KiB page. It
/// grows by handing out the next chunk (2 MiB, <c>MADV_HUGEPAGE</c>) to one order, which splits
/// it into blocks on that order's free list. Freed pages go back to their order's free list and
/// are reused; there is no buddy merging, since a pool keeps one order for life. Free lists are
/// intrusive (the descriptor's <see cref="PageDesc.NextFree"/>) under one lock per order: the
/// arena is the slow path, and pools take and give pages in bulk to amortize it. Past the limit,
/// allocation returns nothing; it never throws for exhaustion and never crashes.
/// </remarks>
public sealed unsafe class PageArena : IDisposable
{
    /// <summary>
    /// Highest supported order (128 KiB pages): enough for a whole UDP GRO aggregate (up to
    /// 65,535 bytes) with the io_uring header in front of it.
    /// </summary>
    public const int MaxOrder = 5;

    /// <summary>Default chunk: 2 MiB, the x86-64 huge page size.</summary>
    public const int DefaultChunkSize = 2 << 20;

    private static readonly Lock s_registryLock = new();
    private static PageArena?[] s_arenas = new PageArena?[8];
    private static PageArena? s_shared;

    private readonly nint _base;
    private readonly PageDesc* _descs;
    private readonly long _limit;
    private readonly int _chunkSize;
    private readonly nuint _descBytes;

    /// <summary>Bytes of the reservation handed to orders so far (the bump pointer).</summary>
    private long _committed;

    private readonly OrderList[] _orders = new OrderList[MaxOrder + 1];
    private readonly Lock _growLock = new();
    private int _disposed;

    /// <summary>Creates an arena that may grow to <paramref name="limitBytes"/>.</summary>
    /// <param name="limitBytes">Upper bound of memory the arena maps; a multiple of <paramref name="chunkSize"/>.</param>
    /// <param name="chunkSize">Growth step; a power of two of at least 128 KiB.</param>
    /// <param name="nid">The NUMA node its pages report.</param>
    public PageArena(long limitBytes = 256L << 20, int chunkSize = DefaultChunkSize, int nid = 0)
    {
        if (chunkSize < (NetmemDesc.BasePageSize << MaxOrder) || (chunkSize & (chunkSize - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(chunkSize), chunkSize, "Chunk size must be a power of two of at least 128 KiB (one page of the highest order).");
        }

        if (limitBytes < chunkSize || limitBytes % chunkSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(limitBytes), limitBytes, $"Limit must be a positive multiple of the chunk size ({chunkSize} bytes).");
        }

        _limit = limitBytes;
        _chunkSize = chunkSize;
        Nid = nid;
        _base = Sys.Mmap(0, (nuint)limitBytes, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_PRIVATE | Sys.MAP_ANONYMOUS | Sys.MAP_NORESERVE, -1, 0);
        _descBytes = (nuint)(limitBytes >> NetmemDesc.PageShift) * NetmemDesc.Size;
        try
        {
            _descs = (PageDesc*)Sys.Mmap(0, _descBytes, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_PRIVATE | Sys.MAP_ANONYMOUS | Sys.MAP_NORESERVE, -1, 0);
        }
        catch
        {
            Sys.Munmap(_base, (nuint)limitBytes);
            throw;
        }

        for (int i = 0; i <= MaxOrder; i++)
        {
            _orders[i] = new OrderList();
        }

        Id = Register(this);
    }

    /// <summary>The process-wide arena that pools use unless given another (1 GiB limit).</summary>
    public static PageArena Shared
    {
        get
        {
            PageArena? a = Volatile.Read(ref s_shared);
            if (a is not null)
            {
                return a;
            }

            lock (s_registryLock)
            {
                return s_shared ??= new PageArena(1L << 30);
            }
        }
    }

    /// <summary>Process-unique id, stored in each page descriptor.</summary>
    public int Id { get; }

    /// <summary>NUMA node of this arena's memory.</summary>
    public int Nid { get; }

    /// <summary>The most memory the arena will map.</summary>
    public long LimitBytes => _limit;

    /// <summary>Memory handed to orders so far.</summary>
    public long CommittedBytes => Volatile.Read(ref _committed);

    /// <summary>Pages of <paramref name="order"/> now on the free list.</summary>
    public int FreePages(int order) => Volatile.Read(ref OrderOf(order).FreeCount);

    /// <summary>Pages of <paramref name="order"/> carved so far (free or out).</summary>
    public int TotalPages(int order) => Volatile.Read(ref OrderOf(order).TotalCount);

    /// <summary>Pages of <paramref name="order"/> handed out and not yet freed.</summary>
    public int PagesOut(int order) => TotalPages(order) - FreePages(order);

    /// <summary>Allocates one page, or <see cref="NetmemRef.Null"/> when the limit is reached.</summary>
    public NetmemRef Alloc(int order)
    {
        Span<NetmemRef> one = stackalloc NetmemRef[1];
        return AllocBulk(order, one) == 1 ? one[0] : NetmemRef.Null;
    }

    /// <summary>
    /// Fills <paramref name="dest"/> with pages of <paramref name="order"/>, growing as needed.
    /// Returns how many it got: fewer than asked only when the limit is reached.
    /// </summary>
    public int AllocBulk(int order, Span<NetmemRef> dest)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        OrderList list = OrderOf(order);
        int got = 0;
        while (got < dest.Length)
        {
            lock (list.Lock)
            {
                while (got < dest.Length && list.Head != 0)
                {
                    PageDesc* d = (PageDesc*)list.Head;
                    list.Head = d->NextFree;
                    d->NextFree = 0;
                    d->PageRef = 1;
                    d->Common.State = (int)NetmemState.InFlight;
                    dest[got++] = NetmemRef.FromPage(d);
                    list.FreeCount--;
                }
            }

            if (got < dest.Length && !Grow(order))
            {
                break;
            }
        }

        return got;
    }

    /// <summary>Returns a page to its free list. Throws if it is not this arena's or is already free.</summary>
    public void Free(NetmemRef page)
    {
        PageDesc* d = CheckOwn(page);
        if (d->Common.State == (int)NetmemState.Free)
        {
            throw new InvalidOperationException($"{page} is already free in arena {Id}: double free.");
        }

        FreeUnchecked(d);
    }

    internal void FreeUnchecked(PageDesc* d)
    {
        d->Common.PoolId = 0;
        d->Common.PpRefCount = 0;
        d->Common.DmaAddr = 0;
        d->PageRef = 0;
        OrderList list = _orders[d->Order];
        lock (list.Lock)
        {
            d->Common.State = (int)NetmemState.Free;
            d->NextFree = list.Head;
            list.Head = (nint)d;
            list.FreeCount++;
        }
    }

    /// <summary>
    /// Takes an extra page reference (the kernel's <c>get_page</c>) for a holder outside the
    /// pool. While it is held, the pool cannot recycle the page: it releases it instead
    /// (<c>recycle_released_refcnt</c>), and the last <see cref="PutPage"/> frees it.
    /// </summary>
    public static void GetPage(NetmemRef page)
    {
        PageDesc* d = page.PageDescriptor;
        if (d->Common.State == (int)NetmemState.Free && d->PageRef == 0)
        {
            throw new InvalidOperationException($"{page} is free; it cannot take a reference.");
        }

        Interlocked.Increment(ref d->PageRef);
    }

    /// <summary>Drops a reference taken with <see cref="GetPage"/>; the last one frees the page to its arena.</summary>
    public static void PutPage(NetmemRef page)
    {
        PageDesc* d = page.PageDescriptor;
        int left = Interlocked.Decrement(ref d->PageRef);
        if (left < 0)
        {
            Interlocked.Increment(ref d->PageRef);
            throw new InvalidOperationException($"{page}: page reference count would drop below zero.");
        }

        if (left == 0)
        {
            ReturnToOwner(d);
        }
    }

    /// <summary>True when the page is on this arena's free list.</summary>
    /// <remarks>
    /// A page the pool released while a holder outside it still had a page reference
    /// (<see cref="GetPage"/>) is also in state <c>Free</c> (no pool holds it) but is not yet on
    /// the free list: its page reference count tells the two apart, as <see cref="GetPage"/> does.
    /// </remarks>
    public bool IsFree(NetmemRef page)
    {
        PageDesc* d = CheckOwn(page);
        return d->Common.State == (int)NetmemState.Free && Volatile.Read(ref d->PageRef) == 0;
    }

    /// <summary>O(1): the page containing <paramref name="address"/>, or null when outside the arena or not carved.</summary>
    public NetmemRef FromAddress(nint address)
    {
        long off = (long)address - (long)_base;
        if (off < 0 || off >= Volatile.Read(ref _committed))
        {
            return NetmemRef.Null;
        }

        PageDesc* d = _descs + (off >> NetmemDesc.PageShift);
        if (d->Common.Magic != NetmemDesc.PageMagic)
        {
            // A tail page of a higher-order block: its head is aligned down to the block size.
            d = _descs + ((off >> NetmemDesc.PageShift) & ~((1L << d->Order) - 1));
        }

        return NetmemRef.FromPage(d);
    }

    /// <summary>True when <paramref name="address"/> lies inside memory this arena has carved.</summary>
    public bool Contains(nint address) => !FromAddress(address).IsNull;

    internal static PageArena? FromId(int id)
    {
        PageArena?[] arr = Volatile.Read(ref s_arenas);
        return (uint)id < (uint)arr.Length ? arr[id] : null;
    }

    /// <summary>Returns a page to the arena it came from.</summary>
    internal static void ReturnToOwner(PageDesc* d)
    {
        PageArena a = FromId(d->ArenaId) ?? throw new InvalidOperationException($"page@0x{(nuint)d:x} names arena {d->ArenaId}, which does not exist.");
        a.FreeUnchecked(d);
    }

    private PageDesc* CheckOwn(NetmemRef page)
    {
        PageDesc* d = page.PageDescriptor;
        if ((byte*)d < (byte*)_descs || (byte*)d >= (byte*)_descs + _descBytes || d->ArenaId != Id)
        {
            throw new ArgumentException($"{page} does not belong to arena {Id}.", nameof(page));
        }

        return d;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private OrderList OrderOf(int order)
    {
        if ((uint)order > MaxOrder)
        {
            ThrowBadOrder(order);
        }

        return _orders[order];
    }

    /// <summary>Hands the next chunk to <paramref name="order"/>. False when the limit is reached.</summary>
    private bool Grow(int order)
    {
        lock (_growLock)
        {
            long start = _committed;
            if (start + _chunkSize > _limit)
            {
                return false;
            }

            nint chunk = _base + (nint)start;
            Sys.TryMadvise(chunk, (nuint)_chunkSize, Sys.MADV_HUGEPAGE);
            int blockPages = 1 << order;
            int blockBytes = NetmemDesc.BasePageSize << order;
            int blocks = _chunkSize / blockBytes;
            PageDesc* first = _descs + (start >> NetmemDesc.PageShift);
            nint head = 0;

            // Build the chunk's list back to front so pages come out in address order.
            for (int b = blocks - 1; b >= 0; b--)
            {
                PageDesc* d = first + ((long)b * blockPages);
                for (int t = 1; t < blockPages; t++)
                {
                    // Tail descriptors carry only the order, so FromAddress can find the head.
                    d[t] = default;
                    d[t].Order = order;
                }

                *d = default;
                d->Common.Magic = NetmemDesc.PageMagic;
                d->Common.State = (int)NetmemState.Free;
                d->Data = chunk + ((nint)b * blockBytes);
                d->Order = order;
                d->Nid = Nid;
                d->ArenaId = Id;
                d->NextFree = head;
                head = (nint)d;
            }

            OrderList list = _orders[order];
            lock (list.Lock)
            {
                PageDesc* last = first + ((long)(blocks - 1) * blockPages);
                last->NextFree = list.Head;
                list.Head = head;
                list.FreeCount += blocks;
                list.TotalCount += blocks;
            }

            Volatile.Write(ref _committed, start + _chunkSize);
            return true;
        }
    }

    private static int Register(PageArena arena)
    {
        lock (s_registryLock)
        {
            PageArena?[] arr = s_arenas;
            for (int i = 1; i < arr.Length; i++)
            {
                if (arr[i] is null)
                {
                    arr[i] = arena;
                    return i;
                }
            }

            PageArena?[] grown = new PageArena?[arr.Length * 2];
            Array.Copy(arr, grown, arr.Length);
            grown[arr.Length] = arena;
            Volatile.Write(ref s_arenas, grown);
            return arr.Length;
        }
    }

    /// <summary>Unmaps the arena. Pages still out become invalid; callers must have returned them.</summary>
    public void Dispose()
    {
        if (ReferenceEquals(this, s_shared) || Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        lock (s_registryLock)
        {
            s_arenas[Id] = null;
        }

        Sys.Munmap(_base, (nuint)_limit);
        Sys.Munmap((nint)_descs, _descBytes);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadOrder(int order) =>
        throw new ArgumentOutOfRangeException(nameof(order), order, $"Page order must be 0..{MaxOrder} (4 KiB to {NetmemDesc.BasePageSize << MaxOrder >> 10} KiB).");

    /// <summary>One order's free list.</summary>
    private sealed class OrderList
    {
        public readonly Lock Lock = new();
        public nint Head;
        public int FreeCount;
        public int TotalCount;
    }
}
