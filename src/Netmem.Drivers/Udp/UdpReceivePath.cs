namespace Netmem.Drivers.Udp;

/// <summary>How a <see cref="UdpReceiver"/> takes datagrams from its socket.</summary>
public enum UdpReceivePath
{
    /// <summary>io_uring when the kernel allows it, else <see cref="RecvMmsg"/> (the reason is in <see cref="UdpReceiver.FallbackReason"/>).</summary>
    Auto = 0,

    /// <summary>A multishot <c>IORING_OP_RECVMSG</c> over a provided-buffer ring fed by the page pool. Fails when io_uring is unavailable.</summary>
    IoUring = 1,

    /// <summary><c>recvmmsg(2)</c> batches into the same pool memory.</summary>
    RecvMmsg = 2,
}
