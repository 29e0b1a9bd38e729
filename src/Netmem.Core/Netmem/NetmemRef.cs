using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace Netmem;

/// <summary>What a <see cref="NetmemRef"/> names.</summary>
public enum NetmemKind
{
    /// <summary>The null handle: names nothing.</summary>
    Null = 0,
    /// <summary>A readable page with a CPU address.</summary>
    Page = 1,
    /// <summary>A <c>net_iov</c>: a chunk of a bound dmabuf region, with a DMA address and no CPU address.</summary>
    NetIov = 2,
}

/// <summary>
/// A handle to one unit of network memory: a page or a <c>net_iov</c>. It is the address of the
/// unmanaged descriptor, with bit 0 set for a <c>net_iov</c> (the kernel's <c>NET_IOV</c> tag).
/// Copying it copies one <see cref="nuint"/>; it owns nothing.
/// </summary>
/// <remarks>
/// Descriptors are 64-byte aligned, so bit 0 is free for the tag. Page and <c>net_iov</c>
/// descriptors share their first 32 bytes (<see cref="NetmemDescHeader"/>), so the pool reads
/// either kind through <see cref="Header"/> with one mask and no branch.
/// </remarks>
[DebuggerDisplay("{ToString(),nq}")]
public readonly unsafe struct NetmemRef : IEquatable<NetmemRef>
{
    /// <summary>The tag bit that marks a <c>net_iov</c>.</summary>
    public const nuint NetIovTag = 1;

    private readonly nuint _value;

    internal NetmemRef(nuint value) => _value = value;

    /// <summary>The null handle.</summary>
    public static NetmemRef Null => default;

    /// <summary>The raw tagged value, for storing in rings and descriptor arrays.</summary>
    public nuint Value => _value;

    /// <summary>Rebuilds a handle from <see cref="Value"/>.</summary>
    public static NetmemRef FromValue(nuint value) => new(value);

    /// <summary>True for <see cref="Null"/>: the handle names nothing.</summary>
    public bool IsNull => _value == 0;

    /// <summary>True for a <c>net_iov</c> (bit 0 set).</summary>
    public bool IsNetIov => (_value & NetIovTag) != 0;

    /// <summary>True for a page.</summary>
    public bool IsPage => _value != 0 && (_value & NetIovTag) == 0;

    /// <summary>What the handle names, from its tag bit: null, a page or a <c>net_iov</c>.</summary>
    public NetmemKind Kind => _value == 0 ? NetmemKind.Null : IsNetIov ? NetmemKind.NetIov : NetmemKind.Page;

    /// <summary>The shared descriptor header; valid for both kinds.</summary>
    internal NetmemDescHeader* Header
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => (NetmemDescHeader*)(_value & ~NetIovTag);
    }

    /// <summary>The page descriptor; throws for a <c>net_iov</c> or null.</summary>
    internal PageDesc* PageDescriptor
    {
        get
        {
            if (!IsPage)
            {
                ThrowNotPage(this);
            }

            return (PageDesc*)_value;
        }
    }

    /// <summary>The <c>net_iov</c> descriptor; throws for a page or null.</summary>
    internal NetIovDesc* NetIovDescriptor
    {
        get
        {
            if (!IsNetIov)
            {
                ThrowNotNetIov(this);
            }

            return (NetIovDesc*)(_value & ~NetIovTag);
        }
    }

    internal static NetmemRef FromPage(PageDesc* page) => new((nuint)page);

    internal static NetmemRef FromNetIov(NetIovDesc* niov) => new((nuint)niov | NetIovTag);

    /// <summary>The DMA address a device would write to.</summary>
    public ulong DmaAddress => CheckedHeader->DmaAddr;

    /// <summary>Id of the pool holding this netmem, 0 when none.</summary>
    public int PoolId => CheckedHeader->PoolId;

    /// <summary>Current pool reference count.</summary>
    public long PoolRefCount => Volatile.Read(ref CheckedHeader->PpRefCount);

    /// <summary>The CPU address of a page. Throws for a <c>net_iov</c>: it has no address pool code may use.</summary>
    public nint PageAddress => PageDescriptor->Data;

    /// <summary>The size in bytes of the memory this handle names (4 KiB &lt;&lt; order for a page).</summary>
    public int Size => IsNetIov ? NetmemDesc.BasePageSize : NetmemDesc.BasePageSize << PageDescriptor->Order;

    /// <summary>Allocation order of a page; throws for a <c>net_iov</c>.</summary>
    public int PageOrder => PageDescriptor->Order;

    /// <summary>The page's bytes. Throws for a <c>net_iov</c>: read those through their region.</summary>
    public Span<byte> GetPageSpan()
    {
        PageDesc* d = PageDescriptor;
        return new Span<byte>((void*)d->Data, NetmemDesc.BasePageSize << d->Order);
    }

    /// <summary>For a <c>net_iov</c>: its binding id.</summary>
    public int BindingId => NetIovDescriptor->BindingId;

    /// <summary>For a <c>net_iov</c>: its byte offset inside the bound region.</summary>
    public ulong RegionOffset => NetIovDescriptor->RegionOffset;

    /// <summary>For a <c>net_iov</c>: its index inside its owner chunk.</summary>
    public int NetIovIndex => NetIovDescriptor->Index;

    private NetmemDescHeader* CheckedHeader
    {
        get
        {
            if (_value == 0)
            {
                ThrowNull();
            }

            return Header;
        }
    }

    /// <summary>True when both handles name the same descriptor (the same tagged value).</summary>
    public bool Equals(NetmemRef other) => _value == other._value;

    /// <summary>True when <paramref name="obj"/> is a <see cref="NetmemRef"/> naming the same descriptor.</summary>
    public override bool Equals(object? obj) => obj is NetmemRef r && r._value == _value;

    /// <summary>A hash of the tagged value, consistent with <see cref="Equals(NetmemRef)"/>.</summary>
    public override int GetHashCode() => _value.GetHashCode();

    /// <summary>True when both handles name the same descriptor.</summary>
    public static bool operator ==(NetmemRef left, NetmemRef right) => left._value == right._value;

    /// <summary>True when the handles name different descriptors.</summary>
    public static bool operator !=(NetmemRef left, NetmemRef right) => left._value != right._value;

    /// <summary>A log-friendly description: kind, descriptor address, pool, count and kind-specific fields.</summary>
    public override string ToString()
    {
        if (_value == 0)
        {
            return "netmem(null)";
        }

        NetmemDescHeader* h = Header;
        CultureInfo c = CultureInfo.InvariantCulture;
        if (IsNetIov)
        {
            NetIovDesc* n = (NetIovDesc*)h;
            return string.Format(c, "net_iov@0x{0:x}(binding {1}, index {2}, offset 0x{3:x}, dma 0x{4:x}, pool {5}, pp_ref {6})",
                (nuint)h, n->BindingId, n->Index, n->RegionOffset, h->DmaAddr, h->PoolId, h->PpRefCount);
        }

        PageDesc* p = (PageDesc*)h;
        return string.Format(c, "page@0x{0:x}(data 0x{1:x}, order {2}, pool {3}, pp_ref {4})",
            (nuint)h, p->Data, p->Order, h->PoolId, h->PpRefCount);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNull() => throw new InvalidOperationException("The netmem handle is null.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotPage(NetmemRef r) =>
        throw new InvalidOperationException(r.IsNull
            ? "The netmem handle is null."
            : $"{r} is a net_iov, not a page: it has no CPU address; read it through its DmabufRegion.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotNetIov(NetmemRef r) =>
        throw new InvalidOperationException(r.IsNull ? "The netmem handle is null." : $"{r} is a page, not a net_iov.");
}
