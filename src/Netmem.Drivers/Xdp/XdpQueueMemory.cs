using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Drivers.Xdp;

/// <summary>
/// One XdpNic queue's memory: the pools (<see cref="Common.QueueMemory"/>) and the UMEM its
/// AF_XDP socket registers. A bound queue's UMEM is the bound <see cref="DmabufRegion"/> itself,
/// in chunks of one <c>net_iov</c> (chunk i is the <c>net_iov</c> at region offset i·4 KiB); an
/// unbound queue's UMEM is anonymous readable memory the driver owns.
/// </summary>
public sealed unsafe class XdpQueueMemory
{
    /// <summary>Bytes per UMEM chunk: one <c>net_iov</c>.</summary>
    public const int ChunkSize = DmabufRegion.Granule;

    /// <summary>log2 of <see cref="ChunkSize"/>.</summary>
    internal const int ChunkShift = 12;

    private XdpQueueMemory(QueueMemory pools, DmabufRegion? region, byte* umem, long umemLength)
    {
        Pools = pools;
        Region = region;
        Umem = umem;
        UmemLength = umemLength;
        Posted = region is null ? [] : new NetmemRef[umemLength >> ChunkShift];
    }

    /// <summary>The header and payload pools.</summary>
    public QueueMemory Pools { get; }

    /// <summary>The bound region (the UMEM), or null for an unbound queue.</summary>
    public DmabufRegion? Region { get; }

    /// <summary>Whether the queue is bound: payloads stay in the region as <c>net_iov</c> fragments.</summary>
    public bool IsBound => Region is not null;

    /// <summary>The UMEM's first byte (the device's address of the region when bound).</summary>
    internal byte* Umem { get; }

    /// <summary>The UMEM's length.</summary>
    public long UmemLength { get; }

    /// <summary>
    /// Bound queues: the <c>net_iov</c> posted at each chunk (fill ring or rx ring), null where
    /// the chunk is not the kernel's. Touched by the poll loop, and by Stop once it is parked.
    /// </summary>
    internal NetmemRef[] Posted { get; }

    /// <summary>Chunks posted now.</summary>
    internal int PostedCount { get; set; }

    /// <summary>Allocates the pools and picks the UMEM for queue <paramref name="queueIndex"/>.</summary>
    internal static XdpQueueMemory Allocate(NetDevice device, int queueIndex, XdpNicOptions o, int maxFrame)
    {
        DmabufRegion? region = (device.RxQueues[queueIndex].MemoryProvider as DevmemProvider)?.Binding?.Region;

        // A bound queue posts its net_iovs to the fill ring only: the pools' rx descriptor ring
        // (payload copies of an unbound queue) stays empty so it holds none of them.
        QueueMemory pools = QueueMemory.Allocate(device, queueIndex, region is null ? o.CopyDescriptors : 0, o.PoolSize, payloadAllowsUnreadable: true, maxFrame, o.Arena);
        try
        {
            if (region is not null)
            {
                return new XdpQueueMemory(pools, region, region.DeviceAddress(0), region.Size);
            }

            long length = (long)o.UnboundChunks * ChunkSize;
            nint p = Sys.Mmap(0, (nuint)length, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_PRIVATE | Sys.MAP_ANONYMOUS | Sys.MAP_POPULATE, -1, 0);
            return new XdpQueueMemory(pools, null, (byte*)p, length);
        }
        catch
        {
            pools.Free();
            throw;
        }
    }

    /// <summary>Returns every posted <c>net_iov</c> to the payload pool (the socket is closed: the kernel is done with them).</summary>
    internal void ReturnPosted()
    {
        for (int i = 0; i < Posted.Length && PostedCount > 0; i++)
        {
            if (!Posted[i].IsNull)
            {
                Pools.PayloadPool.PutFullNetmem(Posted[i], allowDirect: false);
                Posted[i] = NetmemRef.Null;
                PostedCount--;
            }
        }
    }

    /// <summary>Frees the pools and the driver's own UMEM.</summary>
    internal void Free()
    {
        ReturnPosted();
        Pools.Free();
        if (Region is null)
        {
            Sys.Munmap((nint)Umem, (nuint)UmemLength);
        }
    }
}
