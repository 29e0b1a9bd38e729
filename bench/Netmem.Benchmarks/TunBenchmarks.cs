using System.Buffers;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Netmem.Devmem;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Benchmarks;

/// <summary>
/// Receiving real kernel UDP: the TunNic devmem path against a plain <see cref="Socket"/> in the
/// same run, fed by the same kernel sender in the same private namespace.
/// </summary>
/// <remarks>
/// <para><b>TunNicDevmem</b>: a <see cref="NamespaceUdpSender"/> sends to
/// <see cref="TunDevice.PeerIPv4"/>, the kernel routes it into the TUN, TunNic's poll loop reads
/// it with readv (payload straight into a <c>net_iov</c> of the bound memfd region), steers it to a
/// <see cref="DevmemSocket"/>; the benchmark thread receives the Dmabuf record and hands the token
/// back with DontNeed.</para>
/// <para><b>SocketReceiveFrom</b>: the same kind of sender sends to a UDP socket bound to
/// <see cref="TunDevice.LocalIPv4"/> in the namespace; the kernel's UDP stack queues it; the
/// benchmark thread rents an <see cref="ArrayPool{T}.Shared"/> buffer, calls the non-allocating
/// <c>ReceiveFrom(Span, SocketFlags, SocketAddress)</c>, and returns the buffer.</para>
/// <para>Both keep at most <see cref="Window"/> datagrams in flight (the TUN ring holds 1000 and a
/// socket's receive buffer a few hundred), so nothing is dropped: a lost datagram would stall the
/// loop, which then fails after 5 s instead of hanging. Each operation is one datagram sent and
/// received; the time includes the kernel send, which both paths pay alike. Needs root.</para>
/// </remarks>
[MemoryDiagnoser]
public class TunBenchmarks : IDisposable
{
    /// <summary>Datagrams per invocation.</summary>
    public const int N = 4096;

    /// <summary>Most datagrams sent and not yet received.</summary>
    public const int Window = 128;

    private const ushort TunPort = 9200;
    private const ushort SocketPort = 9201;

    private NetNamespace? _ns;
    private DmabufRegion? _region;
    private TunNic? _nic;
    private DmabufBindingHandle? _handle;
    private DevmemSocket? _devmem;
    private NamespaceUdpSender? _toTun;
    private NamespaceUdpSender? _toSocket;
    private Socket? _socket;
    private SocketAddress? _from;
    private byte[] _payload = [];
    private readonly DmabufCmsg[] _cmsgs = new DmabufCmsg[Window];
    private readonly uint[] _tokens = new uint[Window];
    private readonly byte[] _linear = new byte[Window * 1500];

    /// <summary>UDP payload bytes per datagram.</summary>
    [Params(64, 1400)]
    public int Size { get; set; }

    /// <summary>Datagrams per invocation; <see cref="N"/> under BenchmarkDotNet (it must match OperationsPerInvoke).</summary>
    public int Count { get; set; } = N;

    [GlobalSetup]
    public void Setup()
    {
        _ns = BenchNamespace.CreateWithLoopback("netmem-bench", nameof(TunBenchmarks));
        _payload = new byte[Size];
        _payload.AsSpan().Fill(0x5A);

        _region = DmabufRegion.CreateMemfd("tun-bench", 64 << 20);
        _nic = new TunNic(_ns, new TunNicOptions { Configuration = new TunConfiguration { IPv6LinkLocal = false } });
        _handle = _nic.Device.BindDmabuf(_region, [0]);
        _devmem = _nic.OpenSocket(FlowKey.Udp(TunPort));
        _toTun = new NamespaceUdpSender(_ns, new IPEndPoint(TunDevice.PeerIPv4, TunPort), int.MaxValue);

        _socket = BenchNamespace.BoundUdpSocket(_ns, new IPEndPoint(TunDevice.LocalIPv4, SocketPort), s => s.ReceiveBufferSize = 4 << 20);
        _from = new SocketAddress(AddressFamily.InterNetwork);
        _toSocket = new NamespaceUdpSender(_ns, new IPEndPoint(TunDevice.LocalIPv4, SocketPort), int.MaxValue);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_nic is not null)
        {
            TunCounters k = _nic.ReadKernelCounters();
            Console.WriteLine($"// TunBenchmarks({Size}): driver read {_nic.PacketsSeen}, delivered {_nic.QueueCounters(0).Packets}, kernel tx_packets {k.TxPackets}, tx_dropped {k.TxDropped}");
        }

        _toTun?.Dispose();
        _toSocket?.Dispose();
        _socket?.Dispose();
        _handle?.Dispose();
        _nic?.Dispose();
        _region?.Dispose();
        _ns?.Dispose();
        (_toTun, _toSocket, _socket, _handle, _nic, _region, _ns, _devmem) = (null, null, null, null, null, null, null, null);
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

    /// <summary>Kernel UDP → TUN → TunNic (readv into a net_iov) → DevmemSocket.Receive → DontNeed.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long TunNicDevmem()
    {
        DevmemSocket socket = _devmem!;
        NamespaceUdpSender sender = _toTun!;
        int count = Count;
        int sent = 0, got = 0;
        long bytes = 0;
        long idleSince = Environment.TickCount64;
        while (got < count)
        {
            while (sent < count && sent - got < Window)
            {
                sender.Send(_payload);
                sent++;
            }

            int n = socket.Receive(_cmsgs, _linear, out _);
            if (n == 0)
            {
                if (!socket.WaitReadable(100) && Environment.TickCount64 - idleSince > 5000)
                {
                    ThrowStalled("TUN", sent, got);
                }

                continue;
            }

            for (int i = 0; i < n; i++)
            {
                ref DmabufCmsg c = ref _cmsgs[i];
                if (c.Type != DevmemCmsgType.Dmabuf || c.FragSize != (uint)_payload.Length)
                {
                    throw new InvalidOperationException($"unexpected record {c}");
                }

                _tokens[i] = c.FragToken;
                bytes += c.FragSize;
            }

            socket.DontNeed(_tokens.AsSpan(0, n));
            got += n;
            idleSince = Environment.TickCount64;
        }

        return bytes;
    }

    /// <summary>Kernel UDP → local UDP socket → ReceiveFrom into an ArrayPool&lt;byte&gt;.Shared buffer → Return.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long SocketReceiveFrom()
    {
        Socket socket = _socket!;
        NamespaceUdpSender sender = _toSocket!;
        SocketAddress from = _from!;
        int count = Count;
        int sent = 0, got = 0;
        long bytes = 0;
        while (got < count)
        {
            while (sent < count && sent - got < Window)
            {
                sender.Send(_payload);
                sent++;
            }

            byte[] buffer = ArrayPool<byte>.Shared.Rent(2048);
            try
            {
                int n = socket.ReceiveFrom(buffer, SocketFlags.None, from);
                if (n != _payload.Length)
                {
                    throw new InvalidOperationException($"received {n} bytes, sent {_payload.Length}");
                }

                bytes += n;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
            {
                ThrowStalled("socket", sent, got);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            got++;
        }

        return bytes;
    }

    private static void ThrowStalled(string path, int sent, int got) =>
        throw new InvalidOperationException($"{path} path stalled: {got} of {sent} sent datagrams received in 5 s (a datagram was dropped?)");
}
