namespace Netmem.Tool.TunDemo;

/// <summary>Options of <c>netmem tun</c>.</summary>
public sealed record TunRunOptions
{
    /// <summary>UDP datagrams to send through the kernel (all of them, over all flows).</summary>
    public int Count { get; init; } = 100_000;

    /// <summary>UDP payload bytes per datagram (at most the MTU less 28 bytes of IPv4 and UDP headers).</summary>
    public int Payload { get; init; } = 1400;

    /// <summary>
    /// TUN queues. One: a single-queue TUN whose queue 0 is bound to the region. More: an
    /// IFF_MULTI_QUEUE TUN with every queue bound, and one flow (sender and socket) per queue.
    /// </summary>
    public int Queues { get; init; } = 1;

    /// <summary>Interface MTU (1280..9000).</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>Size of the memfd region bound to the queues.</summary>
    public long RegionBytes { get; init; } = 64L << 20;

    /// <summary>Datagrams per burst: the sender waits for the driver to read a burst before the next (the TUN drops, silently, what overflows its 1000-packet ring).</summary>
    public int Burst { get; init; } = 200;

    /// <summary>Print a progress line about every second.</summary>
    public bool Progress { get; init; } = true;
}
