using Netmem.Tool.Demo;

namespace Netmem.Tool.Relay;

/// <summary>
/// What <c>netmem relay</c> measured and checked: everything <see cref="DemoResult"/> reports
/// (<see cref="DemoResult.PacketsInjected"/> counts datagrams the generator put on the wire,
/// <see cref="DemoResult.PacketsDelivered"/> those the far end's queue delivered,
/// <see cref="DemoResult.PacketsReceived"/> and <see cref="DemoResult.PacketsVerified"/> the far
/// end's), plus the relay's own counts, the zero-copy sends, the bytes copied and what was
/// still held at the end.
/// </summary>
public sealed record RelayRunResult : DemoResult
{
    /// <summary>The NIC the relay ran on (<c>simnic</c>, <c>tun</c> or <c>xdp</c>).</summary>
    public string Driver { get; init; } = "";

    /// <summary>How the device received and transmitted (xdp: the interface, AF_XDP mode, XDP mode and whether tx used multi-buffer); null where there is nothing to add.</summary>
    public string? DevicePath { get; init; }

    /// <summary>Datagrams the relay's socket received whole.</summary>
    public long PacketsRelayReceived { get; init; }

    /// <summary>Datagrams the relay sent on (one zero-copy send each).</summary>
    public long PacketsRelayed { get; init; }

    /// <summary>Datagrams counted as dropped somewhere (the sum of <see cref="DemoResult.DropsByReason"/>).</summary>
    public long PacketsDropped { get; init; }

    /// <summary>Datagrams generated and neither received at the far end nor counted as dropped (must be 0).</summary>
    public long PacketsLost { get; init; }

    /// <summary>Of <see cref="PacketsRelayReceived"/>, datagrams that spanned more than one fragment.</summary>
    public long MultiFragmentDatagrams { get; init; }

    /// <summary>Fragments the relay received.</summary>
    public long FragmentsReceived { get; init; }

    /// <summary>Zero-copy sends the device finished.</summary>
    public long ZeroCopyCompleted { get; init; }

    /// <summary>Of <see cref="ZeroCopyCompleted"/>, sends the driver copied first (SO_EE_CODE_ZEROCOPY_COPIED).</summary>
    public long ZeroCopyCopied { get; init; }

    /// <summary>Zero-copy sends the device cancelled.</summary>
    public long ZeroCopyCancelled { get; init; }

    /// <summary>Times a send met ENOBUFS and the relay waited for completions.</summary>
    public long SendRetries { get; init; }

    /// <summary>Payload bytes the CPU copied on the relay's path: 0 when every fragment arrived in the region.</summary>
    public long RelayBytesCopied { get; init; }

    /// <summary>
    /// Payload bytes the driver's transmit copied before the device read them: 0 on the devmem
    /// path; on xdp, every relayed payload when the kernel refused <c>XDP_USE_SG</c> and XdpNic
    /// fell back to copying headers and payload into one frame (those sends complete as copied).
    /// </summary>
    public long DriverBytesCopied { get; init; }

    /// <summary>Payload bytes the far end's socket copied out of readable memory for the verifier.</summary>
    public long FarEndBytesCopied { get; init; }

    /// <summary>
    /// Payload bytes the device moved: written into the region, read from it for transmit, and
    /// written into the far end's pages. Device DMA on hardware; on SimNic the device is
    /// simulated, so the CPU does these copies too.
    /// </summary>
    public long DeviceDmaBytes { get; init; }

    /// <summary>Who moved <see cref="DeviceDmaBytes"/> on this run's device: DMA, simulated DMA, or the kernel's copies.</summary>
    public string DeviceBytesMovedBy { get; init; } = "";

    /// <summary>Zero-copy sends still in flight plus completions not yet read, at the end (must be 0).</summary>
    public long CompletionsOutstanding { get; init; }

    /// <summary>Tokens the relay's socket still held at the end (must be 0).</summary>
    public long TokensOutstanding { get; init; }

    /// <summary>The transmit binding's id (<see cref="DemoResult.BindingId"/> is the receive binding's).</summary>
    public int TxBindingId { get; init; }
}
