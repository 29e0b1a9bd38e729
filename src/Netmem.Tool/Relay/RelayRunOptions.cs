namespace Netmem.Tool.Relay;

/// <summary>The NIC a <c>netmem relay</c> runs on.</summary>
public enum RelayDriver
{
    /// <summary>A SimNic whose wire loops transmitted frames into its own second queue (no setup, no root).</summary>
    SimNic,

    /// <summary>A TunNic in a private network namespace, kernel sockets at both ends (root).</summary>
    Tun,

    /// <summary>An XdpNic on a veth pair (root).</summary>
    Xdp,
}

/// <summary>Options of <c>netmem relay</c>.</summary>
public sealed record RelayRunOptions
{
    /// <summary>The NIC to relay on.</summary>
    public RelayDriver Driver { get; init; } = RelayDriver.SimNic;

    /// <summary>How long the generator runs, at most (it also stops after <see cref="Count"/>).</summary>
    public double Seconds { get; init; } = 5;

    /// <summary>Datagrams to generate at most; 0 for as many as <see cref="Seconds"/> allows.</summary>
    public long Count { get; init; }

    /// <summary>UDP payload bytes per datagram (a 9000-byte MTU less IPv4 and UDP headers; above 4096 a datagram spans several fragments).</summary>
    public int Payload { get; init; } = 1400;

    /// <summary>Datagrams generated and not yet accounted for (verified at the far end or counted as dropped) at most: the generator's pacing, so no queue or socket overflows.</summary>
    public int Window { get; init; } = 256;

    /// <summary>Size of the memfd region bound for receive and for transmit.</summary>
    public long RegionBytes { get; init; } = 64L << 20;

    /// <summary>Print a progress line about every second.</summary>
    public bool Progress { get; init; }
}
