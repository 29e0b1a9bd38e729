using System.Buffers;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Netmem.Devmem;
using Netmem.Drivers.Tun;
using Netmem.Drivers.Xdp;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Benchmarks;

/// <summary>
/// Where XdpNic's receive time goes, split from the end-to-end figure of
/// <see cref="XdpBenchmarks"/>: the receive side alone over frames already in the UMEM, against
/// a plain socket draining datagrams already queued; and the kernel side alone, the peer's send
/// into the AF_XDP socket against the same send into a plain socket.
/// </summary>
/// <remarks>
/// <para>Two veth pairs in private namespaces, as in <see cref="XdpBenchmarks"/>: XdpNic (copy
/// mode, queue 0 bound to a memfd region, a <see cref="DevmemSocket"/> for the flow) on one, a
/// UDP socket bound in the device namespace of the other (no XDP). One kernel UDP sender in each
/// peer namespace. One invocation per iteration of <see cref="Count"/> datagrams, so one
/// operation is one datagram and allocated bytes are per datagram.</para>
/// <para>XdpNic's poll thread can be held (an internal hook of the driver): held, it keeps the
/// fill ring stocked and the socket in the XDP program's map, so the kernel goes on copying
/// frames into the UMEM and posting them to the rx ring, but it takes none off the ring. Every
/// setup proves the frames or datagrams are all there (rx-ring count and XDP_STATISTICS for the
/// AF_XDP socket; SO_MEMINFO receive memory = count × truesize and the drop counter for the
/// plain socket) or fails.</para>
/// <list type="bullet">
/// <item><b>XdpNicQueued</b> (receive side): the setup holds the poll loop and sends; the
/// measured code resumes it and receives every record at the DevmemSocket, returning the tokens
/// with DONTNEED. What it times is the driver's user-space path alone: rx-ring read, Ethernet/IP/
/// UDP parse, header copy to the header pool, flow steering, the fragment's hand-off with its
/// token, fill-ring restock, and the consumer's receive and DONTNEED, on two threads.</item>
/// <item><b>SocketReceiveFromQueued</b> (receive side, baseline): the setup sends into the
/// plain socket; the measured code drains it with ReceiveFrom into ArrayPool buffers.</item>
/// <item><b>KernelSendToXsk</b> (kernel side): with the poll loop held, the measured code is the
/// peer's sends alone: UDP/IP transmit, the veth hop, the XDP program's redirect and the copy
/// into the UMEM (veth's receive runs in softirq context, normally on the sending CPU as the
/// send leaves its bottom-half section). The cleanup checks and drains the rx ring.</item>
/// <item><b>KernelSendToSocket</b> (kernel side, peer): the same sends through the other veth,
/// delivered by the kernel's UDP stack into the plain socket's queue. The cleanup checks and drains it.</item>
/// </list>
/// <para>Wakeups are counted, not timed: the cleanup prints the poll thread's blocking
/// <c>poll(2)</c> calls and the consumer's waits per packet during XdpNicQueued (the
/// end-to-end counts are <see cref="XdpBenchmarks"/>'). Needs root.</para>
/// </remarks>
[MemoryDiagnoser]
[InvocationCount(1, 1)]
public class XdpReceiveBreakdownBenchmarks : IDisposable
{
    /// <summary>Datagrams per invocation.</summary>
    public const int N = 4096;

    private const ushort XdpPort = 9410;
    private const ushort SocketPort = 9412;

    private VethPair? _xdpVeth;
    private VethPair? _plainVeth;
    private DmabufRegion? _region;
    private XdpNic? _xdp;
    private DmabufBindingHandle? _handle;
    private DevmemSocket? _xdpSocket;
    private NamespaceUdpSender? _toXdp;
    private NamespaceUdpSender? _toSocket;
    private Socket? _socket;
    private SocketAddress? _from;
    private byte[] _payload = [];
    private readonly DevmemConsumer _consumer = new(64 * 1500);
    private uint _truesize;
    private uint _dropsBefore;
    private XskStatistics _xskBefore;
    private long _queuedReceived;
    private long _queuedPollWaits;
    private long _queuedConsumerWaits;
    private long _strayFrames;

    /// <summary>UDP payload bytes per datagram.</summary>
    [Params(64, 1400)]
    public int Size { get; set; }

    /// <summary>Datagrams per invocation; <see cref="N"/> under BenchmarkDotNet (it must match OperationsPerInvoke).</summary>
    public int Count { get; set; } = N;

    /// <summary>Creates both veth pairs, the driver, the sockets and the senders; measures one datagram's truesize.</summary>
    [GlobalSetup]
    public void Setup()
    {
        BenchNamespace.RequireAfXdp(nameof(XdpReceiveBreakdownBenchmarks));

        _payload = new byte[Size];
        _payload.AsSpan().Fill(0x5A);

        // Rings and pool with room for a whole invocation held in the rx ring.
        _xdpVeth = VethPair.Create("netmem-bxq");
        _region = DmabufRegion.CreateMemfd("xdp-breakdown", 128 << 20);
        _xdp = new XdpNic(_xdpVeth.DeviceNamespace, _xdpVeth.Name, new XdpNicOptions { FillRingSize = 8192, RxRingSize = 8192, PoolSize = 16384 });
        _handle = _xdp.Device.BindDmabuf(_region, [0]);
        _xdpSocket = _xdp.OpenSocket(FlowKey.Udp(XdpPort), maxOutstanding: 2 * N);
        _toXdp = _xdpVeth.OpenSender(XdpPort, maxDatagrams: int.MaxValue);

        _plainVeth = VethPair.Create("netmem-bsq");
        _socket = BenchNamespace.BoundUdpSocket(_plainVeth.DeviceNamespace, new IPEndPoint(VethPair.DeviceIPv4, SocketPort),
            s => QueuedDatagramCheck.EnlargeReceiveBuffer((int)s.Handle, UdpQueuedReceiveBenchmarks.ReceiveBufferBytes));
        _from = new SocketAddress(AddressFamily.InterNetwork);
        _toSocket = _plainVeth.OpenSender(SocketPort, maxDatagrams: int.MaxValue);

        // One datagram each way: the plain socket's truesize, and the XDP path proven live (the
        // poll loop has stocked the fill ring and put its socket in the map).
        int fd = (int)_socket.Handle;
        uint drops = QueuedDatagramCheck.ExpectEmpty(fd, "truesize probe");
        _toSocket.Send(_payload);
        long probeDeadline = Environment.TickCount64 + 5000;
        while (QueuedDatagramCheck.Read(fd).RmemAlloc == 0 && Environment.TickCount64 < probeDeadline)
        {
            Thread.Sleep(1);
        }

        QueuedDatagramCheck.MemInfo probe = QueuedDatagramCheck.Read(fd);
        _truesize = probe.RmemAlloc;
        if (probe.Drops != drops || _socket.ReceiveFrom(new byte[2048], SocketFlags.None, _from) != Size)
        {
            throw new InvalidOperationException("truesize probe: wrong datagram");
        }

        long live = Environment.TickCount64 + 5000;
        long probeBytes = 0;
        int probes = 0;
        while (probeBytes == 0)
        {
            if (Environment.TickCount64 > live)
            {
                throw new InvalidOperationException($"XDP path: none of {probes} datagrams arrived in 5 s");
            }

            _toXdp.Send(_payload);
            probes++;
            _ = _xdpSocket.WaitReadable(100);
            while (_consumer.TakeReady(_xdpSocket, Size, ref probeBytes) != 0)
            {
            }
        }

        // Probes sent before the socket was in the map went to the kernel's stack; any later one
        // still in flight is taken now, so no stray record lands in a measured drain.
        long settle = Environment.TickCount64 + 200;
        while (probeBytes < (long)probes * Size && Environment.TickCount64 < settle)
        {
            if (_xdpSocket.WaitReadable(20))
            {
                _ = _consumer.TakeReady(_xdpSocket, Size, ref probeBytes);
            }
        }
    }

    /// <summary>Prints the wakeup counts and the kernel's AF_XDP counters, and tears everything down.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        if (_xdp is not null)
        {
            Console.WriteLine($"// XdpReceiveBreakdownBenchmarks({Size}): {_xdp}, {_xdp.QueueMode(0)} mode; truesize {_truesize}; xsk {_xdp.ReadXskStatistics(0)}; {_strayFrames} frames in the rx ring beyond the benchmark's");
            if (_queuedReceived != 0)
            {
                Console.WriteLine($"// XdpReceiveBreakdownBenchmarks({Size}) wakeups in XdpNicQueued: {XdpBenchmarks.WakeupsPerPacket(_queuedPollWaits, _queuedReceived)} poll(2) calls of the poll thread per packet, {XdpBenchmarks.WakeupsPerPacket(_queuedConsumerWaits, _queuedReceived)} consumer waits per packet ({_queuedReceived} packets)");
            }

            _xdp.ResumePolling(0);
        }

        _toXdp?.Dispose();
        _toSocket?.Dispose();
        _socket?.Dispose();
        _handle?.Dispose();
        _xdp?.Dispose();
        _region?.Dispose();
        _xdpVeth?.Dispose();
        _plainVeth?.Dispose();
        (_toXdp, _toSocket, _socket, _handle, _xdp, _region, _xdpVeth, _plainVeth, _xdpSocket) = (null, null, null, null, null, null, null, null, null);
    }

    /// <summary>Same as <see cref="Cleanup"/>, for callers outside BenchmarkDotNet.</summary>
    public void Dispose()
    {
        Cleanup();
        GC.SuppressFinalize(this);
    }

    // ---- receive side: frames / datagrams already queued ----

    /// <summary>Holds the poll loop and queues <see cref="Count"/> frames in the rx ring (checked).</summary>
    [IterationSetup(Target = nameof(XdpNicQueued))]
    public void QueueInRxRing()
    {
        HoldXdp();
        for (int i = 0; i < Count; i++)
        {
            _toXdp!.Send(_payload);
        }

        ExpectInRxRing();
    }

    /// <summary>Queues <see cref="Count"/> datagrams in the plain socket (checked).</summary>
    [IterationSetup(Target = nameof(SocketReceiveFromQueued))]
    public void QueueInSocket()
    {
        int fd = (int)_socket!.Handle;
        _dropsBefore = QueuedDatagramCheck.ExpectEmpty(fd, "ReceiveFrom");
        for (int i = 0; i < Count; i++)
        {
            _toSocket!.Send(_payload);
        }

        QueuedDatagramCheck.WaitQueued(fd, "ReceiveFrom", Count, _truesize, _dropsBefore);
    }

    /// <summary>XdpNic's user-space receive path alone: resume the held poll loop over frames already in the UMEM and rx ring, receive every record, DONTNEED.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long XdpNicQueued()
    {
        XdpNic xdp = _xdp!;
        long pollWaits = xdp.QueuePollWaits(0);
        long consumerWaits = _consumer.Waits;
        xdp.ResumePolling(0);
        long bytes = _consumer.Drain(_xdpSocket!, Count, Size, "XDP");
        _queuedPollWaits += xdp.QueuePollWaits(0) - pollWaits;
        _queuedConsumerWaits += _consumer.Waits - consumerWaits;
        _queuedReceived += Count;
        return bytes;
    }

    /// <summary>The baseline: Socket.ReceiveFrom into ArrayPool buffers over datagrams already queued in the socket.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public long SocketReceiveFromQueued()
    {
        Socket s = _socket!;
        SocketAddress from = _from!;
        long bytes = 0;
        for (int i = 0; i < Count; i++)
        {
            byte[] buf = ArrayPool<byte>.Shared.Rent(2048);
            bytes += s.ReceiveFrom(buf, SocketFlags.None, from);
            ArrayPool<byte>.Shared.Return(buf);
        }

        return bytes;
    }

    // ---- kernel side: the peer's send alone ----

    /// <summary>Holds the poll loop with an empty rx ring and a stocked fill ring.</summary>
    [IterationSetup(Target = nameof(KernelSendToXsk))]
    public void PrepareXsk() => HoldXdp();

    /// <summary>Checks that every frame reached the rx ring, then lets the driver deliver them and drains the DevmemSocket.</summary>
    [IterationCleanup(Target = nameof(KernelSendToXsk))]
    public void DrainXsk()
    {
        ExpectInRxRing();
        _xdp!.ResumePolling(0);
        _ = _consumer.Drain(_xdpSocket!, Count, Size, "XDP");
    }

    /// <summary>Checks the plain socket is empty before the measured sends.</summary>
    [IterationSetup(Target = nameof(KernelSendToSocket))]
    public void PrepareSocket() => _dropsBefore = QueuedDatagramCheck.ExpectEmpty((int)_socket!.Handle, "socket send");

    /// <summary>Checks that every datagram reached the plain socket, then drains it.</summary>
    [IterationCleanup(Target = nameof(KernelSendToSocket))]
    public void DrainSocket()
    {
        QueuedDatagramCheck.WaitQueued((int)_socket!.Handle, "socket send", Count, _truesize, _dropsBefore);
        _ = SocketReceiveFromQueued();
    }

    /// <summary>The peer's kernel send through the veth, XDP redirect and copy into the UMEM (poll loop held: nothing consumes).</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long KernelSendToXsk() => SendAll(_toXdp!);

    /// <summary>The peer's kernel send through a veth without XDP, delivered by the UDP stack into a socket's queue.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long KernelSendToSocket() => SendAll(_toSocket!);

    private long SendAll(NamespaceUdpSender sender)
    {
        for (int i = 0; i < Count; i++)
        {
            sender.Send(_payload);
        }

        return (long)Count * _payload.Length;
    }

    /// <summary>Holds the poll loop once its rx ring is empty and its fill ring has room for an invocation; records the kernel's counters.</summary>
    private void HoldXdp()
    {
        XdpNic xdp = _xdp!;
        long deadline = Environment.TickCount64 + 5000;
        while (true)
        {
            xdp.HoldPolling(0);

            // The held loop still restocks the fill ring (each millisecond). A frame that is not
            // the benchmark's (the peer's IPv6 neighbour discovery, say) may have landed in the
            // rx ring just before the hold: let the loop take it and hold again.
            if (xdp.QueueRxQueued(0) == 0 && xdp.QueueFillPosted(0) >= Count)
            {
                break;
            }

            if (Environment.TickCount64 > deadline)
            {
                xdp.ResumePolling(0);
                throw new InvalidOperationException($"XDP setup: {xdp.QueueRxQueued(0)} frames left in the rx ring, {xdp.QueueFillPosted(0)} chunks posted for {Count}, after 5 s");
            }

            if (xdp.QueueRxQueued(0) != 0)
            {
                xdp.ResumePolling(0);
            }

            Thread.Sleep(1);
        }

        _xskBefore = xdp.ReadXskStatistics(0);
    }

    /// <summary>
    /// Waits (bounded) until the rx ring holds all <see cref="Count"/> frames; fails with the
    /// kernel's counters when one was lost. A frame beyond the count is not the benchmark's
    /// (the driver drops it as unsteered); it is counted and printed at cleanup.
    /// </summary>
    private void ExpectInRxRing()
    {
        XdpNic xdp = _xdp!;
        long deadline = Environment.TickCount64 + 5000;
        SpinWait spin = default;
        while (xdp.QueueRxQueued(0) < Count && xdp.ReadXskStatistics(0).RxLost == _xskBefore.RxLost && Environment.TickCount64 < deadline)
        {
            spin.SpinOnce();
        }

        XskStatistics now = xdp.ReadXskStatistics(0);
        uint queued = xdp.QueueRxQueued(0);
        if (queued < Count || now.RxLost != _xskBefore.RxLost)
        {
            xdp.ResumePolling(0);
            throw new InvalidOperationException(
                $"XDP setup: {Count} frames sent, {queued} in the rx ring; xsk before {_xskBefore}, now {now}");
        }

        _strayFrames += queued - Count;
    }
}
