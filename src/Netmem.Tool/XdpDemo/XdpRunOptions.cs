namespace Netmem.Tool.XdpDemo;

/// <summary>Options of <c>netmem xdp</c>.</summary>
public sealed record XdpRunOptions
{
    /// <summary>UDP datagrams to send through the kernel from the peer namespace.</summary>
    public int Count { get; init; } = 100_000;

    /// <summary>UDP payload bytes per datagram (at most the MTU less 28 bytes of IPv4 and UDP headers, and what a 4 KiB chunk holds).</summary>
    public int Payload { get; init; } = 1400;

    /// <summary>The veth pair's MTU (1280..3000: a frame must fit a 4 KiB UMEM chunk after the kernel's 256-byte headroom).</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>Size of the memfd region bound to the queue (the UMEM).</summary>
    public long RegionBytes { get; init; } = 64L << 20;

    /// <summary>Datagrams per burst: the sender waits for the driver to take a burst before the next, so the fill ring never runs dry.</summary>
    public int Burst { get; init; } = 256;

    /// <summary>Bind in copy mode without trying zero-copy.</summary>
    public bool CopyOnly { get; init; }

    /// <summary>Attach the program in generic (SKB) mode without trying native XDP.</summary>
    public bool GenericXdp { get; init; }

    /// <summary>Print a progress line about every second.</summary>
    public bool Progress { get; init; } = true;
}
