using System.Runtime.InteropServices;

namespace Netmem.Native;

/// <summary>How an AF_XDP socket is bound: the kernel copies frames into the UMEM, or the NIC writes them there itself.</summary>
public enum XskMode
{
    /// <summary><c>XDP_COPY</c>: the kernel copies each frame into a UMEM chunk (any driver, generic XDP included).</summary>
    Copy,

    /// <summary><c>XDP_ZEROCOPY</c>: the NIC's DMA writes into the UMEM; needs driver support.</summary>
    ZeroCopy,
}

/// <summary><c>struct xdp_statistics</c>: the kernel's own counters of one AF_XDP socket.</summary>
/// <param name="RxDropped">Frames dropped by the socket: larger than a chunk, or no fill-ring entry to put them in.</param>
/// <param name="RxInvalidDescs">Fill-ring entries the kernel refused (an address outside the UMEM).</param>
/// <param name="TxInvalidDescs">Invalid transmit descriptors.</param>
/// <param name="RxRingFull">Frames dropped because the rx ring was full (user space too slow).</param>
/// <param name="RxFillRingEmptyDescs">Times the kernel found the fill ring empty (each such frame is also in <paramref name="RxDropped"/>).</param>
/// <param name="TxRingEmptyDescs">Times the transmit ring was empty.</param>
public readonly record struct XskStatistics(ulong RxDropped, ulong RxInvalidDescs, ulong TxInvalidDescs, ulong RxRingFull, ulong RxFillRingEmptyDescs, ulong TxRingEmptyDescs)
{
    /// <summary>Frames the socket lost: <see cref="RxDropped"/> plus <see cref="RxRingFull"/>.</summary>
    public ulong RxLost => RxDropped + RxRingFull;
}

/// <summary>
/// An AF_XDP socket with its UMEM registration and rings: the fill and rx rings a receiver uses,
/// and, when asked for, the tx ring and a completion ring of the same size for a sender (without
/// a tx ring the completion ring exists only because the kernel requires it, sized minimally).
/// </summary>
/// <remarks>
/// <para>Setup follows <c>net/xdp/xsk.c</c>: <c>socket(AF_XDP)</c> (CAP_NET_RAW), register the
/// UMEM (<c>XDP_UMEM_REG</c>: address, length, chunk size, headroom), size the four rings, read
/// <c>XDP_MMAP_OFFSETS</c> and map each ring at its page offset, then <see cref="Bind"/>. The
/// socket lives in the network namespace of the thread that created it; the interface index given
/// to <see cref="Bind"/> is looked up there.</para>
/// <para>In copy mode the kernel writes a frame at a chunk's address plus
/// <see cref="XdpPacketHeadroom"/> plus the UMEM headroom, and the rx descriptor's address points
/// at the frame's first byte. A frame larger than a chunk less that headroom is dropped and counted
/// in <see cref="XskStatistics.RxDropped"/>.</para>
/// <para><see cref="Dispose"/> closes the socket (the kernel unbinds it, removes it from every
/// XSKMAP and stops writing into the UMEM before close returns) and unmaps the rings.</para>
/// </remarks>
internal sealed unsafe class XskSocket : IDisposable
{
    /// <summary><c>XDP_PACKET_HEADROOM</c>: bytes the kernel leaves before each frame in copy mode.</summary>
    public const int XdpPacketHeadroom = 256;

    private const int AfXdp = 44;
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;
    private const int SolXdp = 283;
    private const int XdpMmapOffsets = 1;
    private const int XdpRxRing = 2;
    private const int XdpTxRing = 3;
    private const int XdpUmemReg = 4;
    private const int XdpUmemFillRing = 5;
    private const int XdpUmemCompletionRing = 6;
    private const int XdpStatistics = 7;
    private const int XdpOptions = 8;
    private const ushort XdpCopy = 1 << 1;
    private const ushort XdpZeroCopy = 1 << 2;
    private const ushort XdpUseNeedWakeup = 1 << 3;
    private const ushort XdpUseSg = 1 << 4;
    private const long PgoffRxRing = 0;
    private const long PgoffTxRing = 0x80000000;
    private const long PgoffFillRing = 0x100000000;
    private const long PgoffCompletionRing = 0x180000000;
    private const int MsgDontwait = 0x40;

    private static readonly Lazy<string?> s_unsupportedReason = new(ProbeSupport);

    private int _fd;
    private readonly List<(nint Address, nuint Length)> _maps = [];

    /// <summary>Why this process cannot open AF_XDP sockets (a sentence fit for a skip message), or null when it can.</summary>
    public static string? UnsupportedReason => s_unsupportedReason.Value;

    private static string? ProbeSupport()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "AF_XDP needs Linux.";
        }

        int fd = Libc.Socket(AfXdp, SockRaw | SockCloexec, 0);
        if (fd >= 0)
        {
            _ = Libc.Close(fd);
            return Environment.OSVersion.Version < new Version(5, 9) ? $"kernel {Environment.OSVersion.Version} is older than 5.9 (no BPF links for XDP)." : null;
        }

        int errno = Marshal.GetLastPInvokeError();
        return errno == Errno.EPERM
            ? "AF_XDP sockets need CAP_NET_RAW; this process lacks it."
            : $"socket(AF_XDP) failed: {Errno.Name(errno)} ({Errno.Describe(errno)}).";
    }

    private XskSocket(int fd, nint umem, ulong umemLength, int chunkSize, int headroom)
    {
        _fd = fd;
        UmemAddress = umem;
        UmemLength = umemLength;
        ChunkSize = chunkSize;
        Headroom = headroom;
    }

    /// <summary>The socket descriptor (for an XSKMAP entry and poll), -1 once disposed.</summary>
    public int Fd => _fd;

    /// <summary>The UMEM's first byte.</summary>
    public nint UmemAddress { get; }

    /// <summary>The UMEM's length in bytes.</summary>
    public ulong UmemLength { get; }

    /// <summary>Bytes per UMEM chunk (one frame each).</summary>
    public int ChunkSize { get; }

    /// <summary>The UMEM headroom registered (in addition to <see cref="XdpPacketHeadroom"/>).</summary>
    public int Headroom { get; }

    /// <summary>The largest frame a chunk takes in copy mode.</summary>
    public int MaxFrameSize => ChunkSize - XdpPacketHeadroom - Headroom;

    /// <summary>The fill ring: user space hands the kernel free chunk addresses.</summary>
    public XskRing Fill { get; private set; } = null!;

    /// <summary>The rx ring: the kernel hands user space received frames.</summary>
    public XskRing Rx { get; private set; } = null!;

    /// <summary>The completion ring: the kernel hands back the UMEM address of each transmit descriptor it is done with, in order.</summary>
    public XskRing Completion { get; private set; } = null!;

    /// <summary>The tx ring (user space hands the kernel frames to send), or null when the socket was created without one.</summary>
    public XskRing? Tx { get; private set; }

    /// <summary>
    /// Whether the socket is bound with <c>XDP_USE_SG</c>: a transmitted frame may span several tx
    /// descriptors, every one but the last carrying <c>XDP_PKT_CONTD</c>.
    /// </summary>
    public bool MultiBuffer { get; private set; }

    /// <summary>The mode <see cref="Bind"/> settled on.</summary>
    public XskMode Mode { get; private set; }

    /// <summary>Whether the socket is bound.</summary>
    public bool IsBound { get; private set; }

    /// <summary>The interface index bound to.</summary>
    public int IfIndex { get; private set; }

    /// <summary>The queue bound to.</summary>
    public int QueueId { get; private set; }

    /// <summary>
    /// Creates an AF_XDP socket in the calling thread's network namespace and registers
    /// [<paramref name="umem"/>, +<paramref name="umemLength"/>) as its UMEM in chunks of
    /// <paramref name="chunkSize"/> bytes, with fill and rx rings of the given sizes (powers of two).
    /// </summary>
    /// <remarks>
    /// With <paramref name="txRingSize"/> &gt; 0 the socket also gets a tx ring of that size and a
    /// completion ring of the same size (each transmit descriptor comes back there once); with 0
    /// it has no tx ring and a one-entry completion ring.
    /// </remarks>
    /// <exception cref="NativeException">EPERM without CAP_NET_RAW; EINVAL for a UMEM that is not page aligned or a chunk size outside 2048..4096 aligned; ENOMEM when the pages cannot be pinned (RLIMIT_MEMLOCK).</exception>
    public static XskSocket Create(nint umem, ulong umemLength, int chunkSize, int fillRingSize, int rxRingSize, int headroom = 0, int txRingSize = 0)
    {
        CheckRingSize(fillRingSize, nameof(fillRingSize));
        CheckRingSize(rxRingSize, nameof(rxRingSize));
        if (txRingSize != 0)
        {
            CheckRingSize(txRingSize, nameof(txRingSize));
        }

        int fd = Libc.Socket(AfXdp, SockRaw | SockCloexec, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno switch
            {
                Errno.EPERM => new NativeException("socket(AF_XDP)", errno, "AF_XDP sockets need CAP_NET_RAW; run as root."),
                97 => new NativeException("socket(AF_XDP)", errno, "the kernel has no AF_XDP support (CONFIG_XDP_SOCKETS)."),
                _ => new NativeException("socket(AF_XDP)", errno),
            };
        }

        var s = new XskSocket(fd, umem, umemLength, chunkSize, headroom);
        try
        {
            s.RegisterUmem();
            s.SetOption(XdpUmemFillRing, fillRingSize, "XDP_UMEM_FILL_RING");
            int completionRingSize = Math.Max(txRingSize, 1);
            s.SetOption(XdpUmemCompletionRing, completionRingSize, "XDP_UMEM_COMPLETION_RING");
            s.SetOption(XdpRxRing, rxRingSize, "XDP_RX_RING");
            if (txRingSize != 0)
            {
                s.SetOption(XdpTxRing, txRingSize, "XDP_TX_RING");
            }

            s.MapRings((uint)fillRingSize, (uint)rxRingSize, (uint)txRingSize, (uint)completionRingSize);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Binds to queue <paramref name="queueId"/> of interface <paramref name="ifIndex"/> with
    /// <c>XDP_USE_NEED_WAKEUP</c>: zero-copy first unless <paramref name="copyOnly"/>, then copy
    /// mode where the driver cannot do zero-copy. <see cref="Mode"/> says which one is in use.
    /// With <paramref name="multiBuffer"/> each mode is tried with <c>XDP_USE_SG</c> first and,
    /// when the kernel refuses that (EOPNOTSUPP from a driver without multi-buffer support, EINVAL
    /// from a kernel that does not know the flag), without it; <see cref="MultiBuffer"/> says
    /// which one took.
    /// </summary>
    /// <remarks>
    /// A socket closed on the same queue releases its hold on the queue in deferred kernel work
    /// (<c>xp_release_deferred</c>), so a bind right after a close can see EBUSY for a moment;
    /// bind retries EBUSY for up to <see cref="BusyRetryMs"/> before it gives up.
    /// </remarks>
    /// <exception cref="NativeException">ENODEV for no such interface in the socket's namespace; EINVAL for a queue the interface does not have; EBUSY when another socket holds the queue.</exception>
    public void Bind(int ifIndex, int queueId, bool copyOnly = false, bool multiBuffer = false)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        long deadline = Environment.TickCount64 + BusyRetryMs;
        while (true)
        {
            try
            {
                BindOnce(ifIndex, queueId, copyOnly, multiBuffer);
                return;
            }
            catch (NativeException e) when (e.ErrorNumber == Errno.EBUSY && Environment.TickCount64 < deadline)
            {
                Thread.Sleep(1);
            }
        }
    }

    /// <summary>How long <see cref="Bind"/> retries EBUSY from a socket that was just closed on the queue.</summary>
    public const int BusyRetryMs = 2000;

    private void BindOnce(int ifIndex, int queueId, bool copyOnly, bool multiBuffer)
    {
        if (!copyOnly && TryBindMode(ifIndex, queueId, XdpZeroCopy | XdpUseNeedWakeup, multiBuffer) == 0)
        {
            Mode = XskMode.ZeroCopy;
        }
        else
        {
            int errno = TryBindMode(ifIndex, queueId, XdpCopy | XdpUseNeedWakeup, multiBuffer);
            if (errno != 0)
            {
                throw errno switch
                {
                    Errno.ENODEV => new NativeException("bind(AF_XDP)", errno, $"no interface with index {ifIndex} in this socket's network namespace."),
                    Errno.EINVAL => new NativeException("bind(AF_XDP)", errno, $"interface {ifIndex} has no rx queue {queueId}, or the socket's rings are not set up."),
                    Errno.EBUSY => new NativeException("bind(AF_XDP)", errno, $"queue {queueId} of interface {ifIndex} already has an AF_XDP socket."),
                    _ => new NativeException("bind(AF_XDP)", errno),
                };
            }

            Mode = XskMode.Copy;
        }

        // XDP_OPTIONS is the kernel's own word on zero-copy; trust it over which bind succeeded.
        uint options = 0;
        uint len = sizeof(uint);
        if (Libc.Getsockopt(_fd, SolXdp, XdpOptions, &options, &len) == 0)
        {
            Mode = (options & 1) != 0 ? XskMode.ZeroCopy : XskMode.Copy;
        }

        IfIndex = ifIndex;
        QueueId = queueId;
        IsBound = true;
    }

    /// <summary>The kernel's counters for this socket (<c>XDP_STATISTICS</c>, the full structure).</summary>
    public XskStatistics ReadStatistics()
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        ulong* st = stackalloc ulong[6];
        new Span<ulong>(st, 6).Clear();
        uint len = 6 * sizeof(ulong);
        if (Libc.Getsockopt(_fd, SolXdp, XdpStatistics, st, &len) != 0)
        {
            throw new NativeException("getsockopt(XDP_STATISTICS)", Marshal.GetLastPInvokeError());
        }

        return new XskStatistics(st[0], st[1], st[2], st[3], st[4], st[5]);
    }

    /// <summary>
    /// Wakes the kernel's receive processing (a non-blocking <c>recvfrom</c>), which a zero-copy
    /// driver needs after the fill ring was empty and <see cref="XskRing.NeedsWakeup"/> is set.
    /// </summary>
    public void Wakeup() => _ = Libc.Recvfrom(_fd, null, 0, MsgDontwait, null, null);

    /// <summary>
    /// Asks the kernel to send what the tx ring holds (a non-blocking <c>sendto</c>, the wakeup
    /// <c>XDP_USE_NEED_WAKEUP</c> calls for; in copy mode the only thing that sends). Returns 0 or
    /// the errno: EAGAIN when the kernel stopped at its per-call budget or found the completion
    /// ring full (call again once completions are read), EBUSY while another call sends,
    /// ENETDOWN/ENXIO when the interface is gone.
    /// </summary>
    public int KickTx()
    {
        nint r = Libc.Sendto(_fd, null, 0, MsgDontwait, null, 0);
        return r >= 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for the rx ring to hold frames.</summary>
    public bool WaitReadable(int timeoutMs) => Sys.WaitReadable(_fd, timeoutMs);

    /// <summary>Closes the socket (the kernel unbinds it and stops using the UMEM) and unmaps the rings.</summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0)
        {
            return;
        }

        _ = Libc.Close(fd);
        foreach ((nint a, nuint l) in _maps)
        {
            _ = Libc.Munmap(a, l);
        }

        _maps.Clear();
        IsBound = false;
    }

    /// <inheritdoc/>
    public override string ToString() => $"AF_XDP socket fd {_fd} (if {IfIndex} queue {QueueId}, {Mode})";

    /// <summary>Binds with <paramref name="flags"/>, with <c>XDP_USE_SG</c> first when <paramref name="multiBuffer"/>; 0 or the errno.</summary>
    private int TryBindMode(int ifIndex, int queueId, ushort flags, bool multiBuffer)
    {
        if (multiBuffer)
        {
            int errno = TryBind(ifIndex, queueId, (ushort)(flags | XdpUseSg));
            if (errno is not (Errno.EOPNOTSUPP or Errno.EINVAL))
            {
                MultiBuffer = errno == 0;
                return errno;
            }
        }

        MultiBuffer = false;
        return TryBind(ifIndex, queueId, flags);
    }

    private int TryBind(int ifIndex, int queueId, ushort flags)
    {
        byte* sa = stackalloc byte[16];
        new Span<byte>(sa, 16).Clear();
        *(ushort*)sa = AfXdp;
        *(ushort*)(sa + 2) = flags;
        *(uint*)(sa + 4) = (uint)ifIndex;
        *(uint*)(sa + 8) = (uint)queueId;
        return Libc.Bind(_fd, sa, 16) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    private void RegisterUmem()
    {
        byte* reg = stackalloc byte[32];
        new Span<byte>(reg, 32).Clear();
        *(ulong*)reg = (ulong)UmemAddress;
        *(ulong*)(reg + 8) = UmemLength;
        *(uint*)(reg + 16) = (uint)ChunkSize;
        *(uint*)(reg + 20) = (uint)Headroom;
        if (Libc.Setsockopt(_fd, SolXdp, XdpUmemReg, reg, 32) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno == Errno.ENOMEM
                ? new NativeException("setsockopt(XDP_UMEM_REG)", errno, "the UMEM's pages could not be pinned (RLIMIT_MEMLOCK too low, or out of memory).")
                : new NativeException("setsockopt(XDP_UMEM_REG)", errno,
                    $"the kernel refused a UMEM of {UmemLength} bytes at 0x{UmemAddress:x} in {ChunkSize}-byte chunks: {Errno.Describe(errno)}");
        }
    }

    private void SetOption(int name, int value, string what)
    {
        if (Libc.Setsockopt(_fd, SolXdp, name, &value, sizeof(int)) != 0)
        {
            throw new NativeException("setsockopt(" + what + ")", Marshal.GetLastPInvokeError());
        }
    }

    private void MapRings(uint fillSize, uint rxSize, uint txSize, uint completionSize)
    {
        XdpRingOffset* off = stackalloc XdpRingOffset[4];
        uint len = (uint)(4 * sizeof(XdpRingOffset));
        if (Libc.Getsockopt(_fd, SolXdp, XdpMmapOffsets, off, &len) != 0)
        {
            throw new NativeException("getsockopt(XDP_MMAP_OFFSETS)", Marshal.GetLastPInvokeError());
        }

        // Order in the structure: rx, tx, fill (fr), completion (cr).
        Rx = new XskRing(MapRing(off[0], rxSize, 16, PgoffRxRing), off[0], rxSize, userProduces: false);
        Fill = new XskRing(MapRing(off[2], fillSize, 8, PgoffFillRing), off[2], fillSize, userProduces: true);
        Completion = new XskRing(MapRing(off[3], completionSize, 8, PgoffCompletionRing), off[3], completionSize, userProduces: false);
        if (txSize != 0)
        {
            Tx = new XskRing(MapRing(off[1], txSize, 16, PgoffTxRing), off[1], txSize, userProduces: true);
        }
    }

    private byte* MapRing(in XdpRingOffset off, uint entries, int descSize, long pgoff)
    {
        var length = (nuint)(off.Desc + ((ulong)entries * (ulong)descSize));
        nint p = Sys.Mmap(0, length, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED | Sys.MAP_POPULATE, _fd, pgoff);
        _maps.Add((p, length));
        return (byte*)p;
    }

    private static void CheckRingSize(int size, string name)
    {
        if (size < 2 || size > 1 << 20 || (size & (size - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(name, size, "AF_XDP ring sizes are powers of two from 2 to 2^20.");
        }
    }
}
