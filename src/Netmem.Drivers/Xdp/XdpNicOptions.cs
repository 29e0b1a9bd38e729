namespace Netmem.Drivers.Xdp;

/// <summary>How an <see cref="XdpNic"/> sets up its queues, sockets and XDP program.</summary>
public sealed class XdpNicOptions
{
    /// <summary>Rx queues to receive on, 0..Queues-1 (at most the interface's rx queue count).</summary>
    public int Queues { get; init; } = 1;

    /// <summary>Fill-ring entries per queue (a power of two): chunks the kernel may write into at once.</summary>
    public int FillRingSize { get; init; } = 2048;

    /// <summary>Rx-ring entries per queue (a power of two): received frames not yet processed.</summary>
    public int RxRingSize { get; init; } = 2048;

    /// <summary>Chunks of the driver's own readable UMEM for a queue that is not bound (a power of two, at least <see cref="FillRingSize"/>).</summary>
    public int UnboundChunks { get; init; } = 2048;

    /// <summary>Rx descriptors a queue keeps posted for copying payloads of an unbound queue into pool pages.</summary>
    public int CopyDescriptors { get; init; } = 64;

    /// <summary>Each page pool's ring size.</summary>
    public int PoolSize { get; init; } = 4096;

    /// <summary>Bind in copy mode without trying zero-copy first.</summary>
    public bool CopyOnly { get; init; }

    /// <summary>Attach the program in generic (SKB) mode without trying native (driver) XDP first.</summary>
    public bool GenericXdp { get; init; }

    /// <summary>CPUs to pin the poll threads to (queue i on PinCpus[i % Count]); null leaves them free.</summary>
    public IReadOnlyList<int>? PinCpus { get; init; }

    /// <summary>Tx-ring entries of a bound queue's socket (a power of two); its completion ring has as many.</summary>
    public int TxRingSize { get; init; } = 512;

    /// <summary>
    /// Devmem sends a bound queue may have in flight at once: header slots of 64 bytes
    /// (multi-buffer) or whole frames (without it), in UMEM chunks the queue takes from its
    /// payload pool at start and keeps off the fill ring.
    /// </summary>
    public int TxFrames { get; init; } = 64;

    /// <summary>Devmem sends the transmit queue holds before a send gets ENOBUFS.</summary>
    public int TxQueueCapacity { get; init; } = 1024;

    /// <summary>Bind with <c>XDP_USE_SG</c> where the kernel allows it, so a send's payload goes out from its chunks without a copy.</summary>
    public bool TxMultiBuffer { get; init; } = true;

    /// <summary>
    /// The destination MAC of transmitted frames (6 bytes): the next hop's. Null sends to the
    /// broadcast address, which a Linux peer accepts for a unicast IP destination of its own.
    /// </summary>
    public byte[]? TxDestinationMac { get; init; }

    /// <summary>An arena for the pools' pages; null uses the shared one.</summary>
    public PageArena? Arena { get; init; }
}
