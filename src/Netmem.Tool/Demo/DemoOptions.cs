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

    /// <summary>How to show progress while traffic runs.</summary>
    public ProgressMode Progress { get; init; } = ProgressMode.None;

    /// <summary>For <see cref="ProgressMode.Live"/>: whether the terminal is ours now (a background job writes nothing there).</summary>
    public Func<bool> IsForeground { get; init; } = static () => true;

    /// <summary>Keep running until stopped (stdin closed, SIGTERM or Ctrl+C), so it can be traced.</summary>
    public bool Wait { get; init; }

    /// <summary>When set, unbind and rebind the region this often while traffic flows (queue restarts under load).</summary>
    public TimeSpan? RebindPeriod { get; init; }

    /// <summary>Test hook: corrupt one payload byte in the region, to prove the check fails.</summary>
    public bool InjectCorruption { get; init; }
}

/// <summary>How a run shows progress.</summary>
public enum ProgressMode
{
    /// <summary>Nothing until the summary (output is a file or pipe).</summary>
    None,

    /// <summary>One line rewritten in place with <c>\r</c>, four times a second, while the process is the terminal's foreground job.</summary>
    Live,

    /// <summary>A plain line every second.</summary>
    Lines,
}
