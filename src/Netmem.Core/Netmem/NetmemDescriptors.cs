using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Netmem;

/// <summary>Where a descriptor is in its life: free in its arena/provider, parked in a pool, or handed out.</summary>
internal enum NetmemState : int
{
    /// <summary>Owned by the arena (or the provider's allocator); no pool holds it.</summary>
    Free = 0,

    /// <summary>Parked in a pool's alloc cache or ring, pool reference count 1 (the kernel's convention).</summary>
    InPool = 1,

    /// <summary>Handed out by a pool to a single holder: pool reference count 1.</summary>
    InFlight = 2,

    /// <summary>
    /// Handed out by a pool and given more than one pool reference (frags, extra holders): puts
    /// count down, and the one that drops the last reference claims it. Never goes back to
    /// <see cref="InFlight"/>: a count back at 1 still takes the counted path.
    /// </summary>
    InFlightShared = 3,
}

/// <summary>
/// The leading 32 bytes shared by page and <c>net_iov</c> descriptors: everything the page pool
/// touches, so pool code reads either kind without branching on the tag.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 32)]
internal struct NetmemDescHeader
{
    /// <summary><see cref="NetmemDesc.PageMagic"/> or <see cref="NetmemDesc.NetIovMagic"/>.</summary>
    [FieldOffset(0)] public uint Magic;

    /// <summary>Id of the last pool that held it, kept after release so a late put is named correctly.</summary>
    [FieldOffset(4)] public int LastPoolId;

    /// <summary>DMA (IOVA) address the device writes to.</summary>
    [FieldOffset(8)] public ulong DmaAddr;

    /// <summary>Pool reference count (<c>pp_ref_count</c>): frags and holders; 1 while parked in the pool, 0 once released.</summary>
    [FieldOffset(16)] public long PpRefCount;

    /// <summary>A <see cref="NetmemState"/>: the low half of <see cref="PoolState"/>.</summary>
    [FieldOffset(24)] public int State;

    /// <summary>Id of the pool that holds this netmem, 0 when none (the kernel's <c>pp</c>): the high half of <see cref="PoolState"/>.</summary>
    [FieldOffset(28)] public int PoolId;

    /// <summary>
    /// <see cref="State"/> and <see cref="PoolId"/> as one word, so a pool's put checks the owner
    /// and the state and moves InFlight to InPool with a single CAS (one trip of the cache line
    /// to the returning CPU instead of a read and then a write). See <see cref="MakePoolState"/>.
    /// </summary>
    [FieldOffset(24)] public long PoolState;

    /// <summary>The <see cref="PoolState"/> value of a netmem of pool <paramref name="poolId"/> in <paramref name="state"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long MakePoolState(int poolId, NetmemState state) => (long)(uint)state | ((long)poolId << 32);
}

/// <summary>A page descriptor: the shared header, then page-only fields. 64 bytes, 64-byte aligned.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct PageDesc
{
    [FieldOffset(0)] public NetmemDescHeader Common;

    /// <summary>CPU address of the page's first byte.</summary>
    [FieldOffset(32)] public nint Data;

    /// <summary>Allocation order: the page spans 4 KiB &lt;&lt; Order.</summary>
    [FieldOffset(40)] public int Order;

    /// <summary>NUMA node of the memory.</summary>
    [FieldOffset(44)] public int Nid;

    /// <summary>Arena free-list link (the kernel's <c>lru</c>); valid only while free.</summary>
    [FieldOffset(48)] public nint NextFree;

    /// <summary>Page reference count beyond the pool's (<c>page_ref_count</c>); 1 when only the pool holds it.</summary>
    [FieldOffset(56)] public int PageRef;

    /// <summary>Id of the owning <see cref="PageArena"/>.</summary>
    [FieldOffset(60)] public int ArenaId;
}

/// <summary>A <c>net_iov</c> descriptor: the shared header, then owner fields. 64 bytes, 64-byte aligned.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct NetIovDesc
{
    [FieldOffset(0)] public NetmemDescHeader Common;

    /// <summary>Process-wide id of the owner chunk (a binding's area), registered by the devmem binding.</summary>
    [FieldOffset(32)] public int OwnerId;

    /// <summary>Index of this <c>net_iov</c> inside its owner chunk.</summary>
    [FieldOffset(36)] public int Index;

    /// <summary>A <see cref="NetIovType"/>.</summary>
    [FieldOffset(40)] public int Type;

    /// <summary>Id of the dmabuf binding that owns the chunk.</summary>
    [FieldOffset(44)] public int BindingId;

    /// <summary>Offset of this <c>net_iov</c> within the bound region, in bytes.</summary>
    [FieldOffset(48)] public ulong RegionOffset;

    /// <summary>Page reference count mirror so shared code can read it at the same offset as a page.</summary>
    [FieldOffset(56)] public int PageRef;

    [FieldOffset(60)] public int Reserved;
}

/// <summary>Kinds of <c>net_iov</c>.</summary>
public enum NetIovType
{
    /// <summary>Memory of a dmabuf bound to a queue (devmem).</summary>
    Dmabuf = 1,
}

/// <summary>Descriptor constants.</summary>
internal static class NetmemDesc
{
    public const uint PageMagic = 0x50414745;   // "PAGE"
    public const uint NetIovMagic = 0x4E494F56; // "NIOV"
    public const int Size = 64;
    public const int Alignment = 64;
    public const int PageShift = 12;
    public const int BasePageSize = 1 << PageShift;
}
