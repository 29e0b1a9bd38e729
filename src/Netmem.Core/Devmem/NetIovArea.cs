using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Netmem.Devmem;

/// <summary>
/// The owner of one <see cref="Genalloc.GenPool"/> chunk of a binding (the kernel's
/// <c>dmabuf_genpool_chunk_owner</c> and its <c>net_iov_area</c>): one scatter-gather segment,
/// with a <c>net_iov</c> descriptor for each 4 KiB of it in unmanaged, 64-byte aligned memory.
/// </summary>
/// <remarks>
/// Descriptors are written once here (magic, type, binding, index, region offset, DMA address)
/// and afterwards only their pool fields change, by the page pool. The memory is freed by
/// <see cref="Free"/> when the binding is freed with every <c>net_iov</c> back; freeing it
/// earlier would leave handles pointing at freed memory.
/// </remarks>
internal sealed unsafe class NetIovArea
{
    /// <summary>Process-wide owner ids, stored in each descriptor's <c>OwnerId</c>.</summary>
    private static int s_nextOwnerId;

    /// <summary>The descriptors, <see cref="Count"/> of them; null once freed.</summary>
    private NetIovDesc* _descs;

    internal NetIovArea(DmabufBinding binding, DmaSegment segment)
    {
        Debug.Assert(segment.Length % NetmemDesc.BasePageSize == 0);
        Binding = binding;
        BaseDma = segment.DmaAddress;
        BaseRegionOffset = segment.RegionOffset;
        Count = checked((int)(segment.Length >> NetmemDesc.PageShift));
        OwnerId = Interlocked.Increment(ref s_nextOwnerId);

        nuint bytes = (nuint)Count * NetmemDesc.Size;
        _descs = (NetIovDesc*)NativeMemory.AlignedAlloc(bytes, NetmemDesc.Alignment);
        NativeMemory.Clear(_descs, bytes);
        for (int i = 0; i < Count; i++)
        {
            NetIovDesc* d = _descs + i;
            d->Common.Magic = NetmemDesc.NetIovMagic;
            d->Common.DmaAddr = BaseDma + ((ulong)i << NetmemDesc.PageShift);
            d->Common.State = (int)NetmemState.Free;
            d->OwnerId = OwnerId;
            d->Index = i;
            d->Type = (int)NetIovType.Dmabuf;
            d->BindingId = binding.Id;
            d->RegionOffset = (ulong)BaseRegionOffset + ((ulong)i << NetmemDesc.PageShift);
            d->PageRef = 1;
        }
    }

    /// <summary>The binding whose pool holds this chunk.</summary>
    internal DmabufBinding Binding { get; }

    /// <summary>DMA address of the first <c>net_iov</c>; also the chunk's address in the binding's gen pool.</summary>
    internal ulong BaseDma { get; }

    /// <summary>Offset in the region of the first <c>net_iov</c>.</summary>
    internal long BaseRegionOffset { get; }

    /// <summary>Number of <c>net_iov</c>s (4 KiB each).</summary>
    internal int Count { get; }

    /// <summary>Process-unique id of this area.</summary>
    internal int OwnerId { get; }

    /// <summary>The descriptor at <paramref name="index"/>. The caller MUST pass an index below <see cref="Count"/>.</summary>
    internal NetIovDesc* this[int index]
    {
        get
        {
            Debug.Assert((uint)index < (uint)Count && _descs != null);
            return _descs + index;
        }
    }

    /// <summary>The descriptor whose DMA address is <paramref name="dmaAddr"/> (inside this chunk).</summary>
    internal NetIovDesc* FromDmaAddress(ulong dmaAddr) => this[(int)((dmaAddr - BaseDma) >> NetmemDesc.PageShift)];

    /// <summary>Frees the descriptors. The binding calls it once, when every <c>net_iov</c> is back.</summary>
    internal void Free()
    {
        NetIovDesc* d = _descs;
        _descs = null;
        if (d != null)
        {
            NativeMemory.AlignedFree(d);
        }
    }
}
