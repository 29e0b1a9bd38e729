using Netmem.Tool.Demo;

namespace Netmem.Tool.UdpDemo;

/// <summary>
/// What <c>netmem udp</c> measured and checked: everything <see cref="DemoResult"/> reports
/// (<see cref="DemoResult.PacketsInjected"/> counts datagrams sent, <see cref="DemoResult.Queues"/>
/// receivers, <see cref="DemoResult.Flows"/> senders), plus the path, the kernel's drops and the
/// buffer-ring counters.
/// </summary>
public sealed record UdpRunResult : DemoResult
{
    /// <summary>"IoUring" or "RecvMmsg": the path the receivers ran.</summary>
    public string Path { get; init; } = "";

    /// <summary>Why Auto fell back to recvmmsg, or null.</summary>
    public string? FallbackReason { get; init; }

    /// <summary>The address the receivers were bound to.</summary>
    public string Endpoint { get; init; } = "";

    /// <summary>True when payloads landed in bound memfd regions.</summary>
    public bool Region { get; init; }

    /// <summary>True when the receivers asked for UDP_GRO.</summary>
    public bool Gro { get; init; }

    /// <summary>Datagrams per send (above 1: UDP GSO sends).</summary>
    public int Gso { get; init; }

    /// <summary>Buffers that carried several datagrams the kernel coalesced, summed over the receivers.</summary>
    public long Coalesced { get; init; }

    /// <summary>The kernel's socket drop counters (SO_RXQ_OVFL), summed over the receivers.</summary>
    public long KernelDrops { get; init; }

    /// <summary>Datagrams truncated to fit their buffer.</summary>
    public long Truncated { get; init; }

    /// <summary>Times a provided-buffer ring ran dry and its receive was armed again.</summary>
    public long BufferRingExhausted { get; init; }

    /// <summary>Datagrams per receiver, in receiver order (how SO_REUSEPORT spread the senders).</summary>
    public IReadOnlyList<long> PerReceiver { get; init; } = [];
}
