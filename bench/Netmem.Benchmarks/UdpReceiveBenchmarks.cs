using System.Buffers;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Netmem.Drivers.Udp;

namespace Netmem.Benchmarks;

/// <summary>
/// End to end, sender included: receiving loopback UDP on an ordinary socket: <see cref="UdpReceiver"/> on io_uring and on
/// recvmmsg against <see cref="Socket.ReceiveFrom(Span{byte}, SocketFlags, SocketAddress)"/>
/// into <see cref="ArrayPool{T}.Shared"/> buffers and against
/// <see cref="Socket.ReceiveFromAsync(SocketAsyncEventArgs)"/>, in the same run with the same sender.
/// </summary>
/// <remarks>
/// <para>Each operation is one datagram: the benchmark thread sends a burst of <see cref="Burst"/>
/// datagrams with one <c>sendmmsg</c> on a connected socket (identical for every method), then
/// the method under test receives the burst and gives its buffers back. The kernel's loopback
/// delivery runs inside the send, so the sender's cost is in every figure alike; what differs is
/// the receive. The burst fits the socket's receive buffer, so nothing is dropped (a lost
/// datagram would stall the loop, which fails after 5 s instead of hanging). Allocated bytes per
/// operation are per datagram.</para>
/// <para><see cref="Sender"/> picks how the same sender sends: separate datagrams
/// (<c>sendmmsg</c>), or UDP GSO sends of up to 64 datagrams each, as QUIC stacks send. Every
/// method receives the same datagrams either way: the kernel cuts a GSO send into datagrams for
/// a socket that did not ask for UDP_GRO, and hands it whole to one that did (the
/// <c>...Gro</c> methods, which split it into one record per datagram). <c>Socket</c> cannot ask
/// for GRO: it has no way to learn where the datagrams of a coalesced buffer end. Over loopback,
/// separate datagrams are never coalesced, so with <see cref="LoopbackSend.Datagrams"/> the Gro
/// receivers get one datagram per buffer like the others.</para>
/// <para>On loopback the sender's kernel work (the whole UDP delivery, plus for io_uring the
/// task work that runs the armed multishot receive as the send returns) is most of each
/// figure, alike for every method; <see cref="UdpQueuedReceiveBenchmarks"/> measures the
/// receive side alone.</para>
/// </remarks>
[MemoryDiagnoser]
public class UdpReceiveBenchmarks : IDisposable
{
    /// <summary>Datagrams per invocation.</summary>
    public const int N = 4096;

    /// <summary>Datagrams per send burst (one sendmmsg).</summary>
    public const int Burst = 64;

    private UdpReceiver? _uring;
    private UdpReceiver? _mmsg;
    private UdpReceiver? _uringGro;
    private UdpReceiver? _mmsgGro;
    private Socket? _plain;
    private Socket? _saeaSocket;
    private SocketAsyncEventArgs? _saea;
    private readonly ManualResetEventSlim _saeaDone = new();
    private SocketAddress? _from;
    private readonly UdpDatagram[] _batch = new UdpDatagram[Burst];
    private LoopbackBurstSender? _sender;

    /// <summary>UDP payload bytes per datagram.</summary>
    [Params(64, 1400)]
    public int Size { get; set; }

    /// <summary>How the sender sends each burst: separate datagrams, or UDP GSO.</summary>
    [Params(LoopbackSend.Datagrams, LoopbackSend.Gso)]
    public LoopbackSend Sender { get; set; }

    /// <summary>Datagrams per invocation; <see cref="N"/> under BenchmarkDotNet (it must match OperationsPerInvoke).</summary>
    public int Count { get; set; } = N;

    [GlobalSetup]
    public void Setup()
    {
        _sender = new LoopbackBurstSender(Size, Burst, Sender);
        _uring = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.IoUring, BufferRingEntries = 1024 });
        _mmsg = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.RecvMmsg, RecvMmsgBatch = Burst });

        // 128 KiB buffers: 128 of them take a burst of separate datagrams with room to spare.
        _uringGro = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.IoUring, Gro = true, BufferRingEntries = 128 });
        _mmsgGro = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.RecvMmsg, Gro = true, RecvMmsgBatch = Burst });
        _plain = Bound();
        _saeaSocket = Bound();
        _from = new SocketAddress(AddressFamily.InterNetwork);
        _saea = new SocketAsyncEventArgs { RemoteEndPoint = new IPEndPoint(IPAddress.Any, 0) };
        _saea.SetBuffer(new byte[2048], 0, 2048);
        _saea.Completed += (_, _) => _saeaDone.Set();
    }

    private static Socket Bound()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 4 << 20 };
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return s;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_uring is not null)
        {
            Console.WriteLine($"// UdpReceiveBenchmarks({Size}, {Sender}): io_uring {_uring.GetStats()}; recvmmsg {_mmsg?.GetStats()}");
            Console.WriteLine($"// UdpReceiveBenchmarks({Size}, {Sender}): io_uring gro {_uringGro?.GetStats()}; recvmmsg gro {_mmsgGro?.GetStats()}");
        }

        _uring?.Dispose();
        _mmsg?.Dispose();
        _uringGro?.Dispose();
        _mmsgGro?.Dispose();
        _plain?.Dispose();
        _saeaSocket?.Dispose();
        _saea?.Dispose();
        _sender?.Dispose();
        _sender = null;
    }

    /// <summary>Same as <see cref="Cleanup"/>, for callers outside BenchmarkDotNet.</summary>
    public void Dispose()
    {
        Cleanup();
        _saeaDone.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Buffers the two Gro receivers got coalesced so far (0 unless the sender uses GSO).</summary>
    public long GroCoalesced => (_uringGro?.GetStats().Coalesced ?? 0) + (_mmsgGro?.GetStats().Coalesced ?? 0);

    /// <summary>UdpReceiver, io_uring multishot recvmsg over the pool-fed buffer ring.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long UdpReceiverIoUring() => RunReceiver(_uring!);

    /// <summary>UdpReceiver, recvmmsg fallback into pool pages.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long UdpReceiverRecvMmsg() => RunReceiver(_mmsg!);

    /// <summary>UdpReceiver, io_uring, with UDP_GRO: a GSO send arrives as one buffer, split into one record per datagram.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long UdpReceiverIoUringGro() => RunReceiver(_uringGro!);

    /// <summary>UdpReceiver, recvmmsg, with UDP_GRO.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long UdpReceiverRecvMmsgGro() => RunReceiver(_mmsgGro!);

    /// <summary>The baseline: Socket.ReceiveFrom (non-allocating SocketAddress overload) into ArrayPool buffers.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public long SocketReceiveFrom()
    {
        Socket s = _plain!;
        EndPoint target = s.LocalEndPoint!;
        long bytes = 0;
        for (int sent = 0; sent < Count; sent += Burst)
        {
            int burst = Math.Min(Burst, Count - sent);
            SendBurst(target, burst);
            for (int i = 0; i < burst; i++)
            {
                byte[] buf = ArrayPool<byte>.Shared.Rent(2048);
                bytes += s.ReceiveFrom(buf, SocketFlags.None, _from!);
                ArrayPool<byte>.Shared.Return(buf);
            }
        }

        return bytes;
    }

    /// <summary>Socket.ReceiveFromAsync with one reused SocketAsyncEventArgs (waits on its Completed event when it goes pending).</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long SocketReceiveFromAsyncSaea()
    {
        Socket s = _saeaSocket!;
        SocketAsyncEventArgs e = _saea!;
        EndPoint target = s.LocalEndPoint!;
        long bytes = 0;
        for (int sent = 0; sent < Count; sent += Burst)
        {
            int burst = Math.Min(Burst, Count - sent);
            SendBurst(target, burst);
            for (int i = 0; i < burst; i++)
            {
                _saeaDone.Reset();
                if (s.ReceiveFromAsync(e) && !_saeaDone.Wait(5000))
                {
                    throw new TimeoutException("ReceiveFromAsync: a datagram was lost");
                }

                bytes += e.BytesTransferred;
            }
        }

        return bytes;
    }

    private long RunReceiver(UdpReceiver rx)
    {
        EndPoint target = rx.LocalEndpoint;
        long bytes = 0;
        for (int sent = 0; sent < Count; sent += Burst)
        {
            int burst = Math.Min(Burst, Count - sent);
            SendBurst(target, burst);
            int got = 0;
            while (got < burst)
            {
                int n = rx.Receive(_batch.AsSpan(0, burst - got), 5000);
                if (n == 0)
                {
                    throw new TimeoutException($"{rx}: a datagram was lost ({got} of {burst})");
                }

                for (int i = 0; i < n; i++)
                {
                    bytes += _batch[i].Length;
                }

                rx.Return(_batch.AsSpan(0, n));
                got += n;
            }
        }

        return bytes;
    }

    private void SendBurst(EndPoint target, int count) => _sender!.SendBurst(target, count);
}
