using Netmem.Drivers.Udp;

namespace Netmem.Tool.UdpDemo;

/// <summary>Options of <c>netmem udp</c>.</summary>
public sealed record UdpRunOptions
{
    /// <summary>Datagrams to send in all (split over the senders).</summary>
    public int Count { get; init; } = 200_000;

    /// <summary>UDP payload bytes per datagram (8..65507; above a buffer's room they arrive truncated and fail verification).</summary>
    public int Payload { get; init; } = 1400;

    /// <summary>Sender threads, each with its own socket (and source port).</summary>
    public int Senders { get; init; } = 2;

    /// <summary>Receivers sharing the port through SO_REUSEPORT, each with its own thread, pool and (with <see cref="Region"/>) region.</summary>
    public int Receivers { get; init; } = 1;

    /// <summary>The receive path; Auto falls back to recvmmsg when io_uring is unavailable.</summary>
    public UdpReceivePath Path { get; init; } = UdpReceivePath.Auto;

    /// <summary>Receive into a bound memfd region (one per receiver) instead of system pages.</summary>
    public bool Region { get; init; }

    /// <summary>Size of each receiver's region.</summary>
    public long RegionBytes { get; init; } = 16L << 20;

    /// <summary>The receivers ask for UDP_GRO: datagrams of one GSO send arrive as one buffer, split into one record each.</summary>
    public bool Gro { get; init; }

    /// <summary>Datagrams per send (1..64): above 1 the senders use UDP GSO (<c>UDP_SEGMENT</c>), as QUIC stacks do.</summary>
    public int Gso { get; init; } = 1;

    /// <summary>Bind to ::1 instead of 127.0.0.1.</summary>
    public bool IPv6 { get; init; }

    /// <summary>Datagrams the senders may have ahead of what the receivers consumed (credit), so loopback does not drop.</summary>
    public int Window { get; init; } = 512;

    /// <summary>Print a progress line about every second.</summary>
    public bool Progress { get; init; } = true;
}
