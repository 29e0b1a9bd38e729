using System.Runtime.CompilerServices;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Drivers.Xdp;

/// <summary>
/// One XdpNic queue's memory: the pools of any <see cref="QueueMemory"/> and the UMEM its AF_XDP
/// socket registers. A bound queue's UMEM is the bound <see cref="DmabufRegion"/> itself, in
/// chunks of one <c>net_iov</c> (chunk i is the <c>net_iov</c> at region offset i·4 KiB); an
/// unbound queue's UMEM is anonymous readable memory the driver owns.
/// </summary>
/// <remarks>
/// A bound queue posts its <c>net_iov</c>s to the fill ring only, so its rx descriptor ring
/// (payload copies of an unbound queue) stays empty and holds none of them; which chunk holds
/// which <c>net_iov</c> is recorded here while the kernel has it. Touched by the poll loop, and
/// by the queue's stop once the loop has parked.
/// </remarks>
public sealed unsafe class XdpQueueMemory : QueueMemory
{
    /// <summary>Bytes per UMEM chunk: one <c>net_iov</c>.</summary>
    public const int ChunkSize = DmabufRegion.Granule;

    /// <summary>log2 of <see cref="ChunkSize"/>.</summary>
    internal const int ChunkShift = 12;

    /// <summary>Bound queues: the <c>net_iov</c> posted at each chunk (fill ring or rx ring), null where the chunk is not the kernel's.</summary>
    private readonly NetmemRef[] _posted;

    private XdpQueueMemory(NetDevice device, int queueIndex, QueueMemoryOptions options, DmabufRegion? region, byte* umem, long umemLength)
        : base(device, queueIndex, options)
    {
        Region = region;
        Umem = umem;
        UmemLength = umemLength;
        _posted = region is null ? [] : new NetmemRef[umemLength >> ChunkShift];
    }

    /// <summary>The bound region (the UMEM), or null for an unbound queue.</summary>
    public DmabufRegion? Region { get; }

    /// <summary>Whether the queue is bound: payloads stay in the region as <c>net_iov</c> fragments.</summary>
    public bool IsBound => Region is not null;

    /// <summary>The UMEM's first byte (the device's address of the region when bound).</summary>
    internal byte* Umem { get; }

    /// <summary>The UMEM's length.</summary>
    public long UmemLength { get; }

    /// <summary>Bound queues: <c>net_iov</c>s the kernel has now (fill ring or rx ring).</summary>
    internal int PostedNetIovs { get; private set; }

    /// <summary>
    /// Allocates the pools and picks the UMEM for queue <paramref name="queueIndex"/>: the region
    /// of the provider bound to the queue, or <paramref name="unboundChunks"/> chunks of the driver's own.
    /// </summary>
    internal static XdpQueueMemory Allocate(NetDevice device, int queueIndex, QueueMemoryOptions options, int unboundChunks)
    {
        DmabufRegion? region = (device.RxQueues[queueIndex].MemoryProvider as DevmemProvider)?.Binding?.Region;
        if (region is not null)
        {
            return new XdpQueueMemory(device, queueIndex, options with { RxRingSize = 0 }, region, region.DeviceAddress(0), region.Size);
        }

        long length = (long)unboundChunks * ChunkSize;
        nint p = Sys.Mmap(0, (nuint)length, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_PRIVATE | Sys.MAP_ANONYMOUS | Sys.MAP_POPULATE, -1, 0);
        try
        {
            return new XdpQueueMemory(device, queueIndex, options, null, (byte*)p, length);
        }
        catch
        {
            Sys.Munmap(p, (nuint)length);
            throw;
        }
    }

    /// <summary>Records <paramref name="netIov"/> as posted to the fill ring and returns its UMEM address (its region offset).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong Post(NetmemRef netIov)
    {
        ulong offset = netIov.RegionOffset;
        _posted[offset >> ChunkShift] = netIov;
        PostedNetIovs++;
        return offset;
    }

    /// <summary>Takes back the <c>net_iov</c> posted at the chunk of UMEM address <paramref name="address"/>; null when none is.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal NetmemRef TakePosted(ulong address)
    {
        ulong chunk = address >> ChunkShift;
        if (chunk >= (ulong)_posted.Length)
        {
            return NetmemRef.Null;
        }

        NetmemRef d = _posted[chunk];
        if (!d.IsNull)
        {
            _posted[chunk] = NetmemRef.Null;
            PostedNetIovs--;
        }

        return d;
    }

    /// <summary>Bound queues: the region offset just past the highest chunk posted now, 0 when none is.</summary>
    internal long PostedEnd()
    {
        for (int i = _posted.Length - 1; i >= 0; i--)
        {
            if (!_posted[i].IsNull)
            {
                return (long)(i + 1) << ChunkShift;
            }
        }

        return 0;
    }

    /// <summary>Returns every posted <c>net_iov</c> to the payload pool (the socket is closed: the kernel is done with them).</summary>
    internal void ReturnPosted()
    {
        for (int i = 0; i < _posted.Length && PostedNetIovs > 0; i++)
        {
            if (!_posted[i].IsNull)
            {
                PayloadPool.PutFullNetmem(_posted[i], allowDirect: false);
                _posted[i] = NetmemRef.Null;
                PostedNetIovs--;
            }
        }
    }

    /// <summary>Returns what is still posted, frees the pools, then the driver's own UMEM.</summary>
    internal override void Free()
    {
        ReturnPosted();
        base.Free();
        if (Region is null)
        {
            Sys.Munmap((nint)Umem, (nuint)UmemLength);
        }
    }
}
