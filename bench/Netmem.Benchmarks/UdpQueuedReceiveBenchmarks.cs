using System.Buffers;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Netmem.Drivers.Udp;

namespace Netmem.Benchmarks;

/// <summary>
/// The receive side alone: <see cref="UdpReceiver"/> on io_uring and on recvmmsg against
/// <see cref="Socket.ReceiveFrom(Span{byte}, SocketFlags, SocketAddress)"/> into
/// <see cref="ArrayPool{T}.Shared"/> buffers and against
/// <see cref="Socket.ReceiveFromAsync(SocketAsyncEventArgs)"/>, each draining datagrams that are
/// already queued in its socket when the measured code starts. The sender's kernel work is in
/// the setup, not in the figure; <see cref="UdpReceiveBenchmarks"/> measures the whole path.
/// </summary>
/// <remarks>
/// <para>Each iteration: the setup sends <see cref="Count"/> loopback datagrams (the same
/// <c>sendmmsg</c> sender for every method) into the socket of the method that runs next, and
/// proves from <c>SO_MEMINFO</c> that all of them are queued (receive memory = count × one
/// datagram's truesize, drop counter unchanged) or fails; the measured invocation then receives
/// exactly that many and gives every buffer back. One invocation per iteration, so one operation
/// is one datagram (OperationsPerInvoke = <see cref="N"/>) and allocated bytes are per datagram.</para>
/// <para>The io_uring receiver is a new one each iteration, its pool warmed in the setup: a
/// multishot request armed while the setup sends would take the datagrams in the task work the
/// kernel runs on the sending thread's return from <c>sendmmsg</c>, i.e. outside the
/// measurement. A fresh receiver arms its request in the first measured receive, with the
/// datagrams already queued; the kernel then delivers them all (the request ends with ENOBUFS
/// when the buffer ring runs dry and is armed again, as in steady state).</para>
/// <para>Receive buffers: <see cref="ReceiveBufferBytes"/> with SO_RCVBUFFORCE (root); without
/// it SO_RCVBUF is capped at net.core.rmem_max and the setup's check fails for
/// <see cref="N"/> datagrams (a smaller <see cref="Count"/> fits).</para>
/// </remarks>
[MemoryDiagnoser]
[InvocationCount(1, 1)]
public class UdpQueuedReceiveBenchmarks : IDisposable
{
    /// <summary>Datagrams queued and received per invocation.</summary>
    public const int N = 4096;

    /// <summary>Receive buffer asked for: room for <see cref="N"/> datagrams of 1400 B (truesize about 2.3 KB) with margin.</summary>
    public const int ReceiveBufferBytes = 32 << 20;

    /// <summary>Datagrams per sendmmsg and per receive batch.</summary>
    public const int Burst = 64;

    private readonly UdpDatagram[] _batch = new UdpDatagram[Burst];
    private readonly ManualResetEventSlim _saeaDone = new();
    private LoopbackBurstSender? _sender;
    private UdpReceiver? _uring;
    private UdpReceiver? _mmsg;
    private Socket? _plain;
    private Socket? _saeaSocket;
    private SocketAsyncEventArgs? _saea;
    private SocketAddress? _from;
    private uint _truesize;
    private uint _dropsBefore;
    private long _uringExhausted;
    private long _uringArms;

    /// <summary>UDP payload bytes per datagram.</summary>
    [Params(64, 1400)]
    public int Size { get; set; }

    /// <summary>Datagrams per invocation; <see cref="N"/> under BenchmarkDotNet (it must match OperationsPerInvoke).</summary>
    public int Count { get; set; } = N;

    /// <summary>Opens the persistent sockets and measures one datagram's truesize.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _sender = new LoopbackBurstSender(Size, Burst);
        _mmsg = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.RecvMmsg, RecvMmsgBatch = Burst, ReceiveBufferBytes = ReceiveBufferBytes });
        _plain = Bound();
        _saeaSocket = Bound();
        _from = new SocketAddress(AddressFamily.InterNetwork);
        _saea = new SocketAsyncEventArgs { RemoteEndPoint = new IPEndPoint(IPAddress.Any, 0) };
        _saea.SetBuffer(new byte[2048], 0, 2048);
        _saea.Completed += (_, _) => _saeaDone.Set();

        // One datagram's truesize, from the kernel's accounting of the same sender's datagram.
        int fd = (int)_plain.Handle;
        _ = QueuedDatagramCheck.ExpectEmpty(fd, "truesize probe");
        _sender.Send(_plain.LocalEndPoint!, 1);
        _truesize = QueuedDatagramCheck.Read(fd).RmemAlloc;
        byte[] buf = new byte[2048];
        if (_truesize == 0 || _plain.ReceiveFrom(buf, SocketFlags.None, _from) != Size)
        {
            throw new InvalidOperationException($"truesize probe: the datagram was not queued (receive memory {_truesize})");
        }
    }

    private static Socket Bound()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 5000 };
        QueuedDatagramCheck.EnlargeReceiveBuffer((int)s.Handle, ReceiveBufferBytes);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return s;
    }

    /// <summary>Closes everything and prints the receivers' counters.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        if (_mmsg is not null)
        {
            Console.WriteLine($"// UdpQueuedReceiveBenchmarks({Size}): truesize {_truesize}; io_uring over all iterations: {_uringArms} arms, {_uringExhausted} buffer-ring exhaustions; recvmmsg {_mmsg.GetStats()}");
        }

        DisposeUring();
        _mmsg?.Dispose();
        _plain?.Dispose();
        _saeaSocket?.Dispose();
        _saea?.Dispose();
        _sender?.Dispose();
        (_mmsg, _plain, _saeaSocket, _saea, _sender) = (null, null, null, null, null);
    }

    /// <summary>Same as <see cref="Cleanup"/>, for callers outside BenchmarkDotNet.</summary>
    public void Dispose()
    {
        Cleanup();
        _saeaDone.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>A new io_uring receiver (request not armed), its pool warmed, and <see cref="Count"/> datagrams queued in its socket.</summary>
    [IterationSetup(Target = nameof(UdpReceiverIoUring))]
    public unsafe void QueueForIoUring()
    {
        DisposeUring();
        var rx = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.IoUring, BufferRingEntries = 1024, ReceiveBufferBytes = ReceiveBufferBytes });
        _uring = rx;

        // Warm the pool as steady state has it: every page allocated once, touched, and recycled,
        // so the first refill in the measurement takes pages from the pool, not from the arena.
        var pages = new NetmemRef[rx.Pool.RingCapacity];
        int got = rx.Pool.AllocBulk(pages);
        for (int i = 0; i < got; i++)
        {
            *(byte*)pages[i].PageAddress = 0;
        }

        for (int i = 0; i < got; i++)
        {
            rx.Pool.RecycleDirect(pages[i]);
        }

        Queue(rx.SocketFd, rx.LocalEndpoint, "io_uring");
    }

    /// <summary>Disposes the iteration's io_uring receiver, keeping its counters for the summary.</summary>
    [IterationCleanup(Target = nameof(UdpReceiverIoUring))]
    public void DisposeUring()
    {
        if (_uring is { } rx)
        {
            UdpReceiverStats s = rx.GetStats();
            _uringArms += s.Arms;
            _uringExhausted += s.BufferRingExhausted;
            _sender?.Forget(rx.LocalEndpoint);
            rx.Dispose();
            _uring = null;
        }
    }

    /// <summary>Queues <see cref="Count"/> datagrams in the recvmmsg receiver's socket.</summary>
    [IterationSetup(Target = nameof(UdpReceiverRecvMmsg))]
    public void QueueForRecvMmsg() => Queue(_mmsg!.SocketFd, _mmsg.LocalEndpoint, "recvmmsg");

    /// <summary>Queues <see cref="Count"/> datagrams in the ReceiveFrom socket.</summary>
    [IterationSetup(Target = nameof(SocketReceiveFrom))]
    public void QueueForReceiveFrom() => Queue((int)_plain!.Handle, _plain.LocalEndPoint!, "ReceiveFrom");

    /// <summary>Queues <see cref="Count"/> datagrams in the ReceiveFromAsync socket.</summary>
    [IterationSetup(Target = nameof(SocketReceiveFromAsyncSaea))]
    public void QueueForReceiveFromAsync() => Queue((int)_saeaSocket!.Handle, _saeaSocket.LocalEndPoint!, "ReceiveFromAsync");

    private void Queue(int fd, EndPoint target, string what)
    {
        _dropsBefore = QueuedDatagramCheck.ExpectEmpty(fd, what);
        _sender!.Send(target, Count);
        QueuedDatagramCheck.ExpectQueued(fd, what, Count, _truesize, _dropsBefore);
    }

    /// <summary>UdpReceiver, io_uring multishot recvmsg over the pool-fed buffer ring, armed with the datagrams already queued.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long UdpReceiverIoUring() => Drain(_uring!);

    /// <summary>UdpReceiver, recvmmsg batches of <see cref="Burst"/> into pool pages.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long UdpReceiverRecvMmsg() => Drain(_mmsg!);

    /// <summary>The baseline: Socket.ReceiveFrom (non-allocating SocketAddress overload) into ArrayPool buffers, one call per datagram.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public long SocketReceiveFrom()
    {
        Socket s = _plain!;
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

    /// <summary>Socket.ReceiveFromAsync with one reused SocketAsyncEventArgs (completes synchronously while datagrams are queued).</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long SocketReceiveFromAsyncSaea()
    {
        Socket s = _saeaSocket!;
        SocketAsyncEventArgs e = _saea!;
        long bytes = 0;
        for (int i = 0; i < Count; i++)
        {
            _saeaDone.Reset();
            if (s.ReceiveFromAsync(e) && !_saeaDone.Wait(5000))
            {
                throw new TimeoutException("ReceiveFromAsync: a queued datagram did not arrive");
            }

            bytes += e.BytesTransferred;
        }

        return bytes;
    }

    private long Drain(UdpReceiver rx)
    {
        long bytes = 0;
        int got = 0;
        while (got < Count)
        {
            int n = rx.Receive(_batch.AsSpan(0, Math.Min(Burst, Count - got)), 5000);
            if (n == 0)
            {
                throw new TimeoutException($"{rx}: {got} of {Count} queued datagrams arrived");
            }

            for (int i = 0; i < n; i++)
            {
                bytes += _batch[i].Length;
            }

            rx.Return(_batch.AsSpan(0, n));
            got += n;
        }

        return bytes;
    }
}
