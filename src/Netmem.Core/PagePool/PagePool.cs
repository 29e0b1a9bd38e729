using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Netmem.Native;
using Netmem.Providers;
using Netmem.Diagnostics;
using Netmem.Rings;

namespace Netmem;

/// <summary>
/// A pool of pages (or <c>net_iov</c>s from a memory provider) that feeds one rx queue, modelled
/// on the Linux kernel's page pool.
/// </summary>
/// <remarks>
/// <para><b>Owned mode</b> (the default for drivers; <see cref="PagePoolParams.Napi"/> set): the
/// alloc cache is a fixed array of 128 refs touched only by the consumer, without atomics.
/// Allocation pops from it; when it is empty, it refills up to 64 refs from the
/// <see cref="PtrRing"/>; when the ring is empty too, the slow path takes a bulk from the memory
/// provider (if the pool has one) or the <see cref="PageArena"/>. A netmem whose last pool
/// reference is dropped is recycled: into the cache when the consumer returns it with direct
/// recycling allowed, otherwise into the ring (many producers); when the ring is full it is
/// released to its provider or the arena.</para>
/// <para><b>Shared mode</b> (no consumer binding): per-CPU alloc caches indexed by the current
/// processor sit in front of the same ring. Each is guarded by a try-lock word, so a thread that
/// migrated between reading its CPU number and touching the cache, or was preempted inside it,
/// makes its peer fall through to the ring instead of corrupting the cache.</para>
/// <para>Pool reference counts follow the kernel: a netmem parked in the pool has count 1 and
/// state <c>InPool</c>; a put on it is a double put. Counters live in per-CPU padded blocks (see
/// <see cref="GetStats"/>).</para>
/// <para><b>Misuse detection, exactly.</b> A netmem handed to a single holder is
/// (this pool, <c>InFlight</c>) in its descriptor's <c>PoolState</c> word; a put claims it by
/// moving that word to (this pool, <c>InPool</c>), and only the claimer recycles or releases it.
/// A netmem given more than one pool reference (frags, <see cref="GetNetmemReference"/>) is
/// <c>InFlightShared</c>: puts drop references with an atomic decrement, and the one that drops
/// the last claims it the same way. Detected, with nothing changed
/// (<see cref="PagePoolMisuseException"/>): a null ref; a ref of another pool or of none
/// (<c>ForeignPool</c>); a put of a netmem parked in this pool, whether the two puts are
/// sequential or concurrent (<c>DoublePut</c>); a put after the pool released the netmem, while
/// no pool has taken it again (<c>PutAfterZero</c>); in <see cref="PutBulk"/>, any of these for
/// any ref, including a ref given more times than it is held within one call, after which the
/// references the call had already dropped are given back. Every put that can race another
/// thread claims with one CAS: <see cref="PutNetmem"/> without <c>allowDirect</c>,
/// <see cref="PutNetmemAny"/>, <see cref="PutBulk"/>, every put on a shared-mode pool, and the
/// last put of a shared netmem. So when two threads put the same netmem at the same instant,
/// exactly one put succeeds and the other raises <c>DoublePut</c>, and the netmem enters the
/// cache or ring once.
/// Not detected: (1) a put with <c>allowDirect</c> on an owned pool (<see cref="RecycleDirect"/>)
/// claims a single-holder netmem with a plain read and write, because the caller guarantees it
/// is the consumer and the fast path pays no atomic: if another thread puts the same netmem at
/// that same instant, both puts may succeed and the netmem is then in the cache and the ring at
/// once (a sequential double put on this path is still detected). (2) A put through a stale
/// handle after this pool handed the netmem out again: it is indistinguishable from the new
/// owner's put and takes the new owner's reference. (3) Surplus puts on a netmem with several
/// references are counted, not checked, until its count would go below zero or its last
/// reference is already claimed. Allocation checks nothing: it trusts the state the put
/// left.</para>
/// </remarks>
public sealed unsafe partial class PagePool : IDisposable
{
    /// <summary>Alloc cache size (the kernel's <c>PP_ALLOC_CACHE_SIZE</c>).</summary>
    public const int AllocCacheSize = 128;

    /// <summary>Refs taken from the ring per refill (the kernel's <c>PP_ALLOC_CACHE_REFILL</c>).</summary>
    public const int RefillBatch = 64;

    /// <summary>Largest ring a pool may ask for.</summary>
    public const int MaxPoolSize = 32768;

    private readonly PagePoolParams _p;
    private readonly int _id;
    private readonly bool _owned;
    private readonly int _order;
    private readonly int _nid;
    private readonly bool _dmaMap;
    private readonly bool _dmaSyncDev;
    private readonly PageArena _arena;
    private readonly PtrRing _ring;
    private readonly PagePoolCounters _stats;

    /// <summary>The consumer's own counter block: written without atomics, owned mode only.</summary>
    private readonly ulong* _cs;

    /// <summary>The owned-mode alloc cache, touched only by the consumer.</summary>
    private readonly nuint* _cache;

    /// <summary>
    /// The owned-mode cache's header (its count), in native memory on a cache line of its own:
    /// as a field of this object it shared a line with the fields every remote put reads, so each
    /// consumer alloc pulled that line away from the returning thread.
    /// </summary>
    private readonly CpuCache* _own;

    /// <summary>Shared-mode per-CPU caches, one 64-byte header each, null in owned mode.</summary>
    private readonly CpuCache* _cpuCaches;
    private readonly int _cpuCount;

    /// <summary>The provider this pool took from its queue, or null for system pages.</summary>
    private readonly IMemoryProvider? _mp;

    /// <summary>0 live, 1 destroyed and lingering for pages in flight, 2 freed.</summary>
    private int _destroyState;

    /// <summary>Create a pool. Throws <see cref="NetmemException"/> with the errno of the first refused parameter.</summary>
    public PagePool(PagePoolParams parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        _p = parameters;
        Validate(parameters);

        _order = parameters.Order;
        _nid = parameters.Nid;
        _dmaMap = (parameters.Flags & PagePoolFlags.DmaMap) != 0;
        _dmaSyncDev = (parameters.Flags & PagePoolFlags.DmaSyncDev) != 0;
        _owned = parameters.Napi is not null;
        _arena = parameters.Arena ?? PageArena.Shared;
        Name = parameters.Name ?? "page_pool";
        TimeProvider = parameters.TimeProvider ?? TimeProvider.System;

        // A queue's provider is taken only by a pool whose driver said it can take unreadable
        // netmem; a header pool on the same queue keeps readable system pages.
        if (parameters.Queue?.MemoryProvider is { } mp && (parameters.Flags & PagePoolFlags.AllowUnreadableNetmem) != 0)
        {
            _mp = mp;
        }

        _ring = new PtrRing(parameters.PoolSize == 0 ? 1024 : parameters.PoolSize);
        _stats = new PagePoolCounters();
        _cs = _stats.Consumer;
        _cache = (nuint*)NativeMemory.AlignedAlloc(AllocCacheSize * (nuint)sizeof(nuint), 64);
        _own = (CpuCache*)NativeMemory.AlignedAlloc((nuint)sizeof(CpuCache), 64);
        NativeMemory.Clear(_own, (nuint)sizeof(CpuCache));
        _own->Slots = _cache;
        _own->Stats = _cs;
        if (!_owned)
        {
            _cpuCount = Environment.ProcessorCount;
            _cpuCaches = (CpuCache*)NativeMemory.AlignedAlloc((nuint)(_cpuCount * sizeof(CpuCache)), 64);
            NativeMemory.Clear(_cpuCaches, (nuint)(_cpuCount * sizeof(CpuCache)));
            for (int i = 0; i < _cpuCount; i++)
            {
                _cpuCaches[i].Slots = (nuint*)NativeMemory.AlignedAlloc(AllocCacheSize * (nuint)sizeof(nuint), 64);
                _cpuCaches[i].Stats = _stats.LockedBlock(i);
            }
        }

        _id = PagePoolRegistry.Register(this);
        try
        {
            if (_mp is not null)
            {
                _mp.Init(this);
                MemoryProviderToggle.Increment();
            }
        }
        catch
        {
            PagePoolRegistry.Unregister(_id);
            FreeMemory();
            GC.SuppressFinalize(this);
            throw;
        }

        CreatedAt = TimeProvider.GetUtcNow();
        NetmemMeter.EnsureCreated();
        NetmemEventSource.Log.PoolCreated(this);
    }

    /// <summary>Process-unique id (the kernel's page pool id), stored in every descriptor it holds.</summary>
    public int Id => _id;

    /// <summary>The name from <see cref="PagePoolParams.Name"/>, or <c>page_pool</c>; for logs and introspection.</summary>
    public string Name { get; }

    /// <summary>The parameters the pool was created with.</summary>
    public PagePoolParams Params => _p;

    /// <summary>The provider this pool took from its queue, or null when it serves system pages.</summary>
    public IMemoryProvider? MemoryProvider => _mp;

    /// <summary>True for a pool without consumer binding, served by per-CPU caches.</summary>
    public bool IsShared => !_owned;

    /// <summary>The page order this pool serves.</summary>
    public int Order => _order;

    /// <summary>Bytes per netmem: 4 KiB &lt;&lt; <see cref="Order"/>.</summary>
    public int NetmemSize => NetmemDesc.BasePageSize << _order;

    /// <summary>The clock used for deferred destroy.</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>When the pool was created, read from <see cref="TimeProvider"/> (UTC).</summary>
    public DateTimeOffset CreatedAt { get; }

    /// <summary>Netmems taken from the arena or provider and not yet given back: in cache, ring or in use.</summary>
    public long Inflight => _stats.Inflight();

    /// <summary>Entries in the owned-mode alloc cache (consumer only).</summary>
    public int AllocCacheCount => _own->Count;

    /// <summary>Entries now in the recycle ring.</summary>
    public int RingCount => _ring.Count;

    /// <summary>Capacity of the recycle ring.</summary>
    public int RingCapacity => _ring.Capacity;

    /// <summary>True once <see cref="Dispose"/> was called.</summary>
    public bool IsDestroyed => Volatile.Read(ref _destroyState) != 0;

    /// <summary>True once a destroyed pool has got every netmem back and freed itself.</summary>
    public bool IsFreed => Volatile.Read(ref _destroyState) == 2;

    /// <summary>Sums the per-CPU counter blocks with SIMD.</summary>
    public PagePoolStats GetStats() => _finalStats ?? Snapshot();

    /// <summary>The counter blocks summed, with recycle.ring taken from the ring's enqueue count.</summary>
    private PagePoolStats Snapshot() => _stats.Snapshot() with { RecycleRing = (ulong)_ring.TotalEnqueued };

    /// <summary>The pool with <paramref name="id"/>, if it is alive or lingering.</summary>
    public static PagePool? FromId(int id) => PagePoolRegistry.Find(id);

    /// <summary>Every pool alive or lingering in this process.</summary>
    public static IReadOnlyList<PagePool> All => PagePoolRegistry.All();

    /// <summary>
    /// Drops one pool reference on <paramref name="netmem"/>, finding its pool from its
    /// descriptor. For consumers (sockets, DONTNEED) that hold only the handle.
    /// </summary>
    public static void PutNetmemAny(NetmemRef netmem)
    {
        if (netmem.IsNull)
        {
            throw new PagePoolMisuseException(PagePoolMisuse.NullRef, "?", netmem, "Cannot put a null netmem.");
        }

        NetmemDescHeader* h = netmem.Header;
        PagePool? pool = PagePoolRegistry.Find(h->PoolId) ?? PagePoolRegistry.Find(h->LastPoolId);
        if (pool is null)
        {
            throw new PagePoolMisuseException(PagePoolMisuse.ForeignPool, "?", netmem, $"{netmem} belongs to no live page pool.");
        }

        pool.PutNetmem(netmem, -1, allowDirect: false);
    }

    /// <summary>The constructor's parameter, named in the <see cref="ArgumentException"/> of a refused parameter.</summary>
    private const string ParametersName = "parameters";

    /// <summary>The checks of <c>page_pool_init</c>: each refused parameter is the caller's argument, with the kernel's errno.</summary>
    private static void Validate(PagePoolParams p)
    {
        if ((uint)p.Order > PageArena.MaxOrder)
        {
            throw NetmemException.InvalidArgument(Errno.EINVAL, ParametersName, $"page pool order {p.Order} is out of range 0..{PageArena.MaxOrder}");
        }

        if (p.PoolSize < 0 || p.PoolSize > MaxPoolSize)
        {
            throw NetmemException.InvalidArgument(Errno.E2BIG, ParametersName, $"page pool size {p.PoolSize} is out of range 0..{MaxPoolSize}");
        }

        if (p.Nid < -1)
        {
            throw NetmemException.InvalidArgument(Errno.EINVAL, ParametersName, $"NUMA node {p.Nid} is invalid (use -1 for any)");
        }

        if ((p.Flags & PagePoolFlags.DmaSyncDev) != 0)
        {
            if ((p.Flags & PagePoolFlags.DmaMap) == 0)
            {
                throw NetmemException.InvalidArgument(Errno.EINVAL, ParametersName, "DmaSyncDev requires DmaMap");
            }

            if (p.MaxLen <= 0)
            {
                throw NetmemException.InvalidArgument(Errno.EINVAL, ParametersName, "DmaSyncDev requires a MaxLen above zero");
            }

            if (p.Offset < 0 || (long)p.Offset + p.MaxLen > (NetmemDesc.BasePageSize << p.Order))
            {
                throw NetmemException.InvalidArgument(Errno.EINVAL, ParametersName, $"Offset {p.Offset} + MaxLen {p.MaxLen} exceeds the page size {NetmemDesc.BasePageSize << p.Order}");
            }
        }

        if (p.DestroyRetryPeriod <= TimeSpan.Zero || p.StalledReportPeriod <= TimeSpan.Zero)
        {
            throw NetmemException.InvalidArgument(Errno.EINVAL, ParametersName, "destroy retry and stalled report periods must be positive");
        }
    }

    /// <summary>Marks a netmem fresh from the arena or provider as this pool's, parked (count 1, in pool).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void SetPpInfo(NetmemRef netmem)
    {
        NetmemDescHeader* h = netmem.Header;
        h->PoolId = _id;
        h->LastPoolId = _id;
        h->PpRefCount = 1;
        h->State = (int)NetmemState.InPool;
        if (_dmaMap && !netmem.IsNetIov)
        {
            // System pages are identity-mapped: the IOVA is the CPU address.
            h->DmaAddr = (ulong)((PageDesc*)h)->Data;
        }
    }

    /// <summary>Names the pool for logs: <c>page_pool ID 'name'</c>.</summary>
    public override string ToString() => $"page_pool {_id} '{Name}'";

    /// <summary>
    /// An alloc cache's header on a cache line of its own: lock word, count, slot and counter
    /// pointers. One per CPU in shared mode; one for the consumer in owned mode (lock unused).
    /// </summary>
    [StructLayout(LayoutKind.Explicit, Size = 64)]
    private struct CpuCache
    {
        [FieldOffset(0)] public int Lock;
        [FieldOffset(4)] public int Count;
        [FieldOffset(8)] public nuint* Slots;

        /// <summary>This cache's counter block, written without atomics by the lock holder.</summary>
        [FieldOffset(16)] public ulong* Stats;
    }
}
