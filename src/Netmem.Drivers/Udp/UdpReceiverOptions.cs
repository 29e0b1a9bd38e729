using System.Net;
using Netmem.Devmem;

namespace Netmem.Drivers.Udp;

/// <summary>Options of a <see cref="UdpReceiver"/>.</summary>
public sealed record UdpReceiverOptions
{
    /// <summary>The local address and port to bind (port 0: the kernel picks one; see <see cref="UdpReceiver.LocalEndpoint"/>).</summary>
    public IPEndPoint LocalEndpoint { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>Sets <c>SO_REUSEPORT</c> so several receivers (one per core) share the port; the kernel spreads flows over them.</summary>
    public bool ReusePort { get; init; }

    /// <summary>The receive path; <see cref="UdpReceivePath.Auto"/> falls back to recvmmsg when io_uring is unavailable.</summary>
    public UdpReceivePath Path { get; init; } = UdpReceivePath.Auto;

    /// <summary>Buffers posted to the kernel (the provided-buffer ring, or the recvmmsg batch): a power of two, 1..32768.</summary>
    public int BufferRingEntries { get; init; } = 1024;

    /// <summary>Datagrams taken per recvmmsg call (the fallback path).</summary>
    public int RecvMmsgBatch { get; init; } = 64;

    /// <summary>Largest number of records the caller may hold at once; a blocking receive with all held fails with ENOBUFS.</summary>
    public int MaxHeld { get; init; } = 8192;

    /// <summary>
    /// Page order of system-page buffers (4 KiB &lt;&lt; order each); raise it to receive datagrams
    /// above about 4 KiB whole. Region buffers are 4 KiB <c>net_iov</c>s: order 0 only. With
    /// <see cref="Gro"/> the order is at least 5.
    /// </summary>
    public int BufferOrder { get; init; }

    /// <summary>
    /// Lets the kernel coalesce datagrams of one flow into one buffer (<c>UDP_GRO</c>): a sender
    /// using UDP GSO (<c>UDP_SEGMENT</c>) over loopback, or a NIC's GRO, hands over up to 64
    /// datagrams at once, and the receiver splits them into one record each (same source, each
    /// holding its own pool reference on the shared buffer, which recycles after the last is
    /// returned). Datagrams arrive whole and in order, as without it.
    /// An aggregate reaches 65,535 bytes, so buffers are at least order 5 (128 KiB) and a region
    /// (4 KiB <c>net_iov</c>s) is refused; give fewer <see cref="BufferRingEntries"/> (64-256:
    /// each buffer holds up to 64 datagrams), since every posted buffer is 128 KiB.
    /// </summary>
    public bool Gro { get; init; }

    /// <summary>
    /// Receive into this memory instead of system pages: the receiver binds it and its buffers
    /// are the binding's <c>net_iov</c>s. It must be CPU-mapped (the kernel copies datagrams with
    /// the CPU); a device-only region is refused with EOPNOTSUPP. The caller keeps ownership.
    /// </summary>
    public DmabufRegion? Region { get; init; }

    /// <summary>Socket receive buffer to ask for (SO_RCVBUFFORCE when allowed, else SO_RCVBUF up to rmem_max); 0 keeps the default.</summary>
    public int ReceiveBufferBytes { get; init; } = 4 << 20;

    /// <summary>Name for pools and logs.</summary>
    public string? Name { get; init; }

    /// <summary>Arena for system pages; null means the shared arena.</summary>
    public PageArena? Arena { get; init; }

    /// <summary>A test's stand-in for a kernel that refuses io_uring: non-zero makes io_uring setup fail with this errno.</summary>
    internal int SimulatedUringErrno { get; init; }
}
