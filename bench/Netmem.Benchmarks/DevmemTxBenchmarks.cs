using System.Buffers;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Netmem.Devmem;
using Netmem.Drivers.SimNic;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Benchmarks;

/// <summary>
/// Sending UDP datagrams: devmem sends from a bound region (<see cref="DevmemSocket.TrySendDmabuf"/>
/// and MSG_ZEROCOPY completions) over SimNic and over TunNic, against a kernel
/// <see cref="Socket"/>'s <c>SendTo</c> from an <see cref="ArrayPool{T}.Shared"/> buffer in the same run.
/// </summary>
/// <remarks>
/// <para>One operation is one datagram of <see cref="Size"/> payload bytes sent, with its buffer
/// free for reuse afterwards: for devmem, until its completion has been read (at most
/// <see cref="Window"/> sends in flight, completions read as they come); for the socket, until
/// <c>SendTo</c> returns and the rented buffer goes back to the pool. Every path runs inside one
/// private network namespace.</para>
/// <list type="bullet">
/// <item><b>SimNicDevmemSend</b>: SimNic's transmit thread builds the headers and DMA-reads the
/// payload from the memfd region into a frame on its looped wire; SimNic's rx poll loop takes the
/// frame and drops it (no socket listens).</item>
/// <item><b>TunNicDevmemSend</b>: TunNic's transmit thread writes headers + payload fragments
/// (read by the kernel from the region) with one <c>writev</c> to the TUN; the namespace's kernel
/// receives the datagram and queues it on a UDP socket bound to the TUN's address.</item>
/// <item><b>SocketSendToLoopback</b> (baseline): <c>SendTo(ReadOnlySpan, SocketFlags, SocketAddress)</c>
/// to a UDP socket on 127.0.0.1 in the namespace: the kernel's UDP transmit, the loopback hop and
/// the same kind of receive.</item>
/// <item><b>SocketSendToTun</b>: the same send to <see cref="TunDevice.PeerIPv4"/>: the kernel
/// routes it into the TUN (the TUN namespace path, the mirror image of TunNic's transmit), where
/// TunNic's rx poll loop reads and drops it (no socket listens).</item>
/// </list>
/// <para>No receiving socket is read: once its buffer is full the kernel drops datagrams there
/// (and the TUN drops what its queue cannot hold), the same for every path that ends there, so
/// the figures are the cost of sending. The rented buffer is sent as it is (no payload copy into
/// it); the region is filled once at setup. Needs root.</para>
/// </remarks>
[MemoryDiagnoser]
public class DevmemTxBenchmarks : IDisposable
{
    /// <summary>Datagrams per invocation.</summary>
    public const int N = 4096;

    /// <summary>Most devmem sends in flight (accepted and not yet reported).</summary>
    public const int Window = 256;

    /// <summary>Distinct payload offsets: 64 slots 1536 bytes apart, so larger payloads cross 4 KiB net_iov boundaries.</summary>
    private const int Slots = 64;
    private const int SlotStride = 1536;

    private const ushort SimPort = 9300;
    private const ushort TunPort = 9301;
    private const ushort LoopbackPort = 9302;
    private const ushort TunPeerPort = 9303;

    private readonly ZeroCopyCompletion[] _notes = new ZeroCopyCompletion[64];

    private NetNamespace? _ns;
    private DmabufRegion? _region;
    private SimNic? _sim;
    private DmabufBindingHandle? _simTx;
    private DevmemSocket? _simSocket;
    private TunNic? _tun;
    private DmabufBindingHandle? _tunTx;
    private DevmemSocket? _tunSocket;
    private Socket? _tunSink;
    private Socket? _loopbackSink;
    private Socket? _sender;
    private SocketAddress? _loopbackTo;
    private SocketAddress? _tunTo;

    /// <summary>UDP payload bytes per datagram.</summary>
    [Params(64, 1400)]
    public int Size { get; set; }

    /// <summary>Datagrams per invocation; <see cref="N"/> under BenchmarkDotNet (it must match OperationsPerInvoke).</summary>
    public int Count { get; set; } = N;

    [GlobalSetup]
    public void Setup()
    {
        _ns = BenchNamespace.CreateWithLoopback("netmem-txbench", nameof(DevmemTxBenchmarks));

        _region = DmabufRegion.CreateMemfd("tx-bench", 1 << 20);
        _region.GetSpan(0, (int)_region.Size).Fill(0x5A);

        _sim = new SimNic("bench-tx", new SimNicOptions { RxQueues = 1, FifoSlots = 1024, RxRingSize = 256, PoolSize = 1024 });
        _simTx = _sim.Device.BindDmabufTx(_region);
        _simSocket = OpenTxSocket(_sim.Device, new IPEndPoint(IPAddress.Parse("10.0.0.1"), SimPort), new IPEndPoint(IPAddress.Parse("10.0.0.2"), SimPort));

        _tun = new TunNic(_ns, new TunNicOptions { Configuration = new TunConfiguration { IPv6LinkLocal = false } });
        _tunTx = _tun.Device.BindDmabufTx(_region);
        _tunSocket = OpenTxSocket(_tun.Device, new IPEndPoint(TunDevice.PeerIPv4, TunPort), new IPEndPoint(TunDevice.LocalIPv4, TunPort));
        _tunSink = BoundSocket(new IPEndPoint(TunDevice.LocalIPv4, TunPort));

        _loopbackSink = BoundSocket(new IPEndPoint(IPAddress.Loopback, LoopbackPort));
        _sender = BoundSocket(new IPEndPoint(IPAddress.Any, 0));
        _loopbackTo = new IPEndPoint(IPAddress.Loopback, LoopbackPort).Serialize();
        _tunTo = new IPEndPoint(TunDevice.PeerIPv4, TunPeerPort).Serialize();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_tun is not null)
        {
            Console.WriteLine($"// DevmemTxBenchmarks({Size}): TunNic tx {_tun.TxStats}, writes {_tun.TxCounters}; SimNic tx {_sim?.TxStats}");
        }

        _simSocket?.Dispose();
        _tunSocket?.Dispose();
        _simTx?.Dispose();
        _tunTx?.Dispose();
        _sim?.Dispose();
        _tun?.Dispose();
        _tunSink?.Dispose();
        _loopbackSink?.Dispose();
        _sender?.Dispose();
        _region?.Dispose();
        _ns?.Dispose();
        (_simSocket, _tunSocket, _simTx, _tunTx, _sim, _tun, _tunSink, _loopbackSink, _sender, _region, _ns) = (null, null, null, null, null, null, null, null, null, null, null);
    }

    /// <summary>Same as <see cref="Cleanup"/>, for callers outside BenchmarkDotNet.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            Cleanup();
        }
    }

    /// <summary>DevmemSocket.TrySendDmabuf → SimNic tx thread (DMA read of the region into a frame) → completion read.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long SimNicDevmemSend() => DevmemSend(_simSocket!, (uint)_simTx!.BindingId);

    /// <summary>DevmemSocket.TrySendDmabuf → TunNic tx thread (one writev: headers + region fragments) → kernel UDP receive → completion read.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long TunNicDevmemSend() => DevmemSend(_tunSocket!, (uint)_tunTx!.BindingId);

    /// <summary>ArrayPool&lt;byte&gt;.Shared.Rent → Socket.SendTo 127.0.0.1 (kernel UDP over loopback) → Return.</summary>
    [Benchmark(OperationsPerInvoke = N, Baseline = true)]
    public long SocketSendToLoopback() => SocketSend(_loopbackTo!);

    /// <summary>ArrayPool&lt;byte&gt;.Shared.Rent → Socket.SendTo the TUN peer address (kernel UDP into the TUN, read by TunNic) → Return.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long SocketSendToTun() => SocketSend(_tunTo!);

    private static DevmemSocket OpenTxSocket(NetDevice device, IPEndPoint source, IPEndPoint destination)
    {
        var s = new DevmemSocket(FlowKey.Udp((ushort)source.Port), maxTxInFlight: 1024) { ZeroCopy = true };
        s.Connect(device, source, destination);

        // A first wait that blocks creates the wait event's lock object (24 B, once per socket);
        // do it here, so a measured operation whose wait happens to block for the first time
        // does not pay for it.
        s.WaitCompletions(1);
        return s;
    }

    private Socket BoundSocket(IPEndPoint at) => BenchNamespace.BoundUdpSocket(_ns!, at);

    /// <summary>Sends <see cref="Count"/> datagrams, keeping at most <see cref="Window"/> unreported; returns the payload bytes completed.</summary>
    private long DevmemSend(DevmemSocket socket, uint id)
    {
        Span<DmabufIov> range = stackalloc DmabufIov[1];
        int count = Count;
        uint size = (uint)Size;
        int sent = 0;
        long reported = 0;
        long idleSince = Environment.TickCount64;
        while (reported < count)
        {
            while (sent < count && sent - reported < Window)
            {
                range[0] = new DmabufIov((ulong)(sent % Slots) * SlotStride, size);
                int err = socket.TrySendDmabuf(id, range, out _);
                if (err != 0)
                {
                    if (err == Errno.ENOBUFS)
                    {
                        break;
                    }

                    ThrowSendFailed(err);
                }

                sent++;
            }

            int n = socket.ReadCompletions(_notes);
            if (n == 0)
            {
                if (!socket.WaitCompletions(100) && Environment.TickCount64 - idleSince > 5000)
                {
                    ThrowStalled(sent, reported);
                }

                continue;
            }

            for (int i = 0; i < n; i++)
            {
                if (_notes[i].Code != ZeroCopyCode.ZeroCopy)
                {
                    ThrowNotZeroCopy(_notes[i]);
                }

                reported += _notes[i].Count;
            }

            idleSince = Environment.TickCount64;
        }

        return reported * size;
    }

    /// <summary>Sends <see cref="Count"/> datagrams from rented buffers; returns the payload bytes sent.</summary>
    private long SocketSend(SocketAddress to)
    {
        Socket socket = _sender!;
        int count = Count;
        int size = Size;
        long bytes = 0;
        for (int i = 0; i < count; i++)
        {
            byte[] buffer = ArrayPool<byte>.Shared.Rent(size);
            try
            {
                bytes += socket.SendTo(buffer.AsSpan(0, size), SocketFlags.None, to);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        return bytes;
    }

    private static void ThrowSendFailed(int errno) =>
        throw new InvalidOperationException($"devmem send failed: {Errno.Name(errno)}");

    private static void ThrowStalled(int sent, long reported) =>
        throw new InvalidOperationException($"devmem send stalled: {reported} of {sent} sends reported in 5 s");

    private static void ThrowNotZeroCopy(ZeroCopyCompletion c) =>
        throw new InvalidOperationException($"sends {c.First}..{c.Last} ended {c.Code}, not zero-copy");
}
