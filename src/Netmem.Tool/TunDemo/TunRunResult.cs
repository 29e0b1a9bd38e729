using Netmem.Tool.Demo;

namespace Netmem.Tool.TunDemo;

/// <summary>
/// What <c>netmem tun</c> measured and checked: everything <see cref="DemoResult"/> reports
/// (<see cref="DemoResult.PacketsInjected"/> counts datagrams handed to the kernel), plus the TUN
/// interface's own kernel counters over the run beside the driver's.
/// </summary>
public sealed record TunRunResult : DemoResult
{
    /// <summary>Packets read from the TUN and not delivered: the sum of <see cref="DemoResult.DropsByReason"/> (router solicitations included).</summary>
    public long PacketsDropped { get; init; }

    /// <summary>The TUN interface's name inside the run's namespace.</summary>
    public string Interface { get; init; } = "";

    /// <summary>The kernel's tx_packets delta of the TUN over the run: packets the driver read.</summary>
    public ulong KernelTxPackets { get; init; }

    /// <summary>The kernel's tx_bytes delta (whole IP packets).</summary>
    public ulong KernelTxBytes { get; init; }

    /// <summary>The kernel's tx_dropped delta: packets lost to a full TUN ring, never seen by the driver.</summary>
    public ulong KernelTxDropped { get; init; }
}
