using Netmem.Tool.Demo;

namespace Netmem.Tool.XdpDemo;

/// <summary>
/// What <c>netmem xdp</c> measured and checked: everything <see cref="DemoResult"/> reports, plus
/// the AF_XDP socket's mode and counters and the veth pair's kernel counters beside the driver's.
/// </summary>
public sealed record XdpRunResult : DemoResult
{
    /// <summary>Frames taken off the rx ring and not delivered: the sum of <see cref="DemoResult.DropsByReason"/>.</summary>
    public long PacketsDropped { get; init; }

    /// <summary>The device end's interface name inside the run's namespace.</summary>
    public string Interface { get; init; } = "";

    /// <summary>"copy" or "zero-copy": how the kernel puts frames into the UMEM.</summary>
    public string XskMode { get; init; } = "";

    /// <summary>"driver" (native) or "generic" (SKB) XDP.</summary>
    public string XdpMode { get; init; } = "";

    /// <summary>The peer end's tx_packets delta: frames sent towards the device end.</summary>
    public ulong KernelPeerTxPackets { get; init; }

    /// <summary>The peer end's tx_dropped delta: frames the veth could not hand over.</summary>
    public ulong KernelPeerTxDropped { get; init; }

    /// <summary>The device end's rx_packets delta.</summary>
    public ulong KernelDeviceRxPackets { get; init; }

    /// <summary>XDP_STATISTICS rx_dropped delta: frames too large for a chunk, or no fill-ring entry.</summary>
    public ulong XskRxDropped { get; init; }

    /// <summary>XDP_STATISTICS rx_ring_full delta: frames lost to a full rx ring.</summary>
    public ulong XskRxRingFull { get; init; }

    /// <summary>XDP_STATISTICS rx_fill_ring_empty_descs delta.</summary>
    public ulong XskFillRingEmptyDescs { get; init; }
}
