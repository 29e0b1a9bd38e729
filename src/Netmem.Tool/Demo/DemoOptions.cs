namespace Netmem.Tool.Demo;

/// <summary>Options of <c>netmem demo</c>.</summary>
public sealed record DemoOptions
{
    /// <summary>How long traffic runs (ignored with <see cref="Wait"/>).</summary>
    public double Seconds { get; init; } = 5;

    /// <summary>UDP payload bytes per datagram.</summary>
    public int Payload { get; init; } = 1400;

    /// <summary>Rx queues; queue 0 stays on system pages, the others are bound to the region.</summary>
    public int Queues { get; init; } = 2;

    /// <summary>Flows (one socket and one consumer thread each), spread over the queues.</summary>
    public int Flows { get; init; } = 2;

    /// <summary>Size of the memfd region bound to the devmem queues.</summary>
    public long RegionBytes { get; init; } = 64L << 20;

    /// <summary>Print a live progress line.</summary>
    public bool Progress { get; init; } = true;

    /// <summary>Keep running until stopped (stdin closed, SIGTERM or Ctrl+C), so it can be traced.</summary>
    public bool Wait { get; init; }

    /// <summary>When set, unbind and rebind the region this often while traffic flows (queue restarts under load).</summary>
    public TimeSpan? RebindPeriod { get; init; }

    /// <summary>Test hook: corrupt one payload byte in the region, to prove the check fails.</summary>
    public bool InjectCorruption { get; init; }
}
