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
/// Receiving real kernel UDP three ways in the same run, each fed by an ordinary kernel socket
/// in a private namespace: XdpNic (AF_XDP into the bound region), TunNic (readv from a TUN into
/// the bound region) and a plain <see cref="Socket"/> (ReceiveFrom into ArrayPool buffers).
/// </summary>
/// <remarks>
/// <para><b>XdpNicDevmem</b>: the sender in a veth peer namespace sends through the veth; the XDP
/// program redirects the frame to queue 0's AF_XDP socket; the kernel copies it into a chunk of
/// the bound memfd region (copy mode: veth has no zero-copy); XdpNic's poll loop parses the
/// headers where they landed, copies them to a header buffer and hands the payload to the
/// <see cref="DevmemSocket"/> as a region fragment; the benchmark thread receives the record and
/// returns the token with DontNeed.</para>
/// <para><b>TunNicDevmem</b>: as in <see cref="TunBenchmarks"/>, in the second namespace pair.</para>
/// <para><b>SocketReceiveFrom</b>: the sender in the second pair's peer namespace sends through
/// a veth without XDP to a UDP socket bound in the device namespace; the benchmark thread rents
/// an <see cref="ArrayPool{T}.Shared"/> buffer and calls the non-allocating ReceiveFrom.</para>
/// <para>Every path keeps at most <see cref="Window"/> datagrams in flight, so nothing is dropped;
/// each operation is one datagram sent and received, and the kernel send is in every figure
/// alike (end to end: most of each figure is the sender's kernel work, see
/// <see cref="XdpReceiveBreakdownBenchmarks"/> for the split). XdpNicDevmem also counts the
/// wakeups of its measured invocations (the poll thread's blocking <c>poll(2)</c> calls, the
/// consumer's waits) and prints them per packet at cleanup. Needs root.</para>
/// </remarks>
[MemoryDiagnoser]
public class XdpBenchmarks : IDisposable
{
    /// <summary>Datagrams per invocation.</summary>
    public const int N = 4096;

    /// <summary>Most datagrams sent and not yet received.</summary>
    public const int Window = 256;

    private const ushort XdpPort = 9400;
    private const ushort TunPort = 9401;
    private const ushort SocketPort = 9402;

    private VethPair? _xdpVeth;
    private VethPair? _plainVeth;
    private DmabufRegion? _xdpRegion;
    private DmabufRegion? _tunRegion;
    private XdpNic? _xdp;
    private TunNic? _tun;
    private DmabufBindingHandle? _xdpHandle;
    private DmabufBindingHandle? _tunHandle;
    private DevmemSocket? _xdpSocket;
    private DevmemSocket? _tunSocket;
    private NamespaceUdpSender? _toXdp;
    private NamespaceUdpSender? _toTun;
    private NamespaceUdpSender? _toSocket;
    private Socket? _socket;
    private SocketAddress? _from;
    private byte[] _payload = [];
    private readonly DevmemConsumer _consumer = new(Window * 1500);
    private long _xdpReceived;
    private long _xdpPollWaits;
    private long _xdpConsumerWaits;

    /// <summary>UDP payload bytes per datagram.</summary>
    [Params(64, 1400)]
    public int Size { get; set; }

    /// <summary>Datagrams per invocation; <see cref="N"/> under BenchmarkDotNet (it must match OperationsPerInvoke).</summary>
    public int Count { get; set; } = N;

    [GlobalSetup]
    public void Setup()
    {
        BenchNamespace.RequireAfXdp(nameof(XdpBenchmarks));

        _payload = new byte[Size];
        _payload.AsSpan().Fill(0x5A);
        _xdpVeth = VethPair.Create("netmem-bxdp");
        _xdpRegion = DmabufRegion.CreateMemfd("xdp-bench", 64 << 20);
        _xdp = new XdpNic(_xdpVeth.DeviceNamespace, _xdpVeth.Name);
        _xdpHandle = _xdp.Device.BindDmabuf(_xdpRegion, [0]);
        _xdpSocket = _xdp.OpenSocket(FlowKey.Udp(XdpPort));
        _toXdp = _xdpVeth.OpenSender(XdpPort, maxDatagrams: int.MaxValue);

        _plainVeth = VethPair.Create("netmem-bplain");
        _tunRegion = DmabufRegion.CreateMemfd("tun-bench", 64 << 20);
        _tun = new TunNic(_plainVeth.DeviceNamespace, new TunNicOptions { Configuration = new TunConfiguration { IPv6LinkLocal = false } });
        _tunHandle = _tun.Device.BindDmabuf(_tunRegion, [0]);
        _tunSocket = _tun.OpenSocket(FlowKey.Udp(TunPort));
        _toTun = new NamespaceUdpSender(_plainVeth.DeviceNamespace, new IPEndPoint(TunDevice.PeerIPv4, TunPort), int.MaxValue);

        _socket = BenchNamespace.BoundUdpSocket(_plainVeth.DeviceNamespace, new IPEndPoint(VethPair.DeviceIPv4, SocketPort), s => s.ReceiveBufferSize = 4 << 20);
        _from = new SocketAddress(AddressFamily.InterNetwork);
        _toSocket = _plainVeth.OpenSender(SocketPort, maxDatagrams: int.MaxValue);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_xdp is not null)
        {
            Console.WriteLine($"// XdpBenchmarks({Size}): {_xdp}, {_xdp.QueueMode(0)} mode; driver took {_xdp.PacketsSeen}, delivered {_xdp.QueueCounters(0).Packets}, xsk {_xdp.ReadXskStatistics(0)}");
            if (_xdpReceived != 0)
            {
                Console.WriteLine($"// XdpBenchmarks({Size}) wakeups in XdpNicDevmem: {WakeupsPerPacket(_xdpPollWaits, _xdpReceived)} poll(2) calls of the poll thread per packet, {WakeupsPerPacket(_xdpConsumerWaits, _xdpReceived)} consumer waits per packet ({_xdpReceived} packets)");
            }
        }

        _toXdp?.Dispose();
        _toTun?.Dispose();
        _toSocket?.Dispose();
        _socket?.Dispose();
        _xdpHandle?.Dispose();
        _tunHandle?.Dispose();
        _xdp?.Dispose();
        _tun?.Dispose();
        _xdpRegion?.Dispose();
        _tunRegion?.Dispose();
        _xdpVeth?.Dispose();
        _plainVeth?.Dispose();
        (_toXdp, _toTun, _toSocket, _socket, _xdpHandle, _tunHandle, _xdp, _tun) = (null, null, null, null, null, null, null, null);
        (_xdpRegion, _tunRegion, _xdpVeth, _plainVeth, _xdpSocket, _tunSocket) = (null, null, null, null, null, null);
    }

    internal static string WakeupsPerPacket(long waits, long packets) =>
        packets == 0 ? "n/a" : ((double)waits / packets).ToString("0.000", System.Globalization.CultureInfo.InvariantCulture);

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

    /// <summary>Kernel UDP → veth → XDP redirect → AF_XDP copy into the region → XdpNic → DevmemSocket.Receive → DontNeed.</summary>
    /// <remarks>Also counts, over the measured invocations only, the poll thread's blocking <c>poll(2)</c> calls and the consumer's waits (printed per packet at cleanup).</remarks>
    [Benchmark(OperationsPerInvoke = N)]
    public long XdpNicDevmem()
    {
        long pollWaits = _xdp!.QueuePollWaits(0);
        long consumerWaits = _consumer.Waits;
        long bytes = ReceiveDevmem(_xdpSocket!, _toXdp!, "XDP");
        _xdpPollWaits += _xdp.QueuePollWaits(0) - pollWaits;
        _xdpConsumerWaits += _consumer.Waits - consumerWaits;
        _xdpReceived += Count;
        return bytes;
    }

    /// <summary>Kernel UDP → TUN → TunNic (readv into a net_iov) → DevmemSocket.Receive → DontNeed.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long TunNicDevmem() => ReceiveDevmem(_tunSocket!, _toTun!, "TUN");

    /// <summary>Kernel UDP → veth → UDP socket → ReceiveFrom into an ArrayPool&lt;byte&gt;.Shared buffer → Return.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
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
                throw new InvalidOperationException($"socket path stalled: {sent} sent, {got} received in 5 s");
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            got++;
        }

        return bytes;
    }

    private long ReceiveDevmem(DevmemSocket socket, NamespaceUdpSender sender, string path)
    {
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

            int n = _consumer.TakeReady(socket, _payload.Length, ref bytes);
            if (n == 0)
            {
                if (!_consumer.Wait(socket) && Environment.TickCount64 - idleSince > 5000)
                {
                    throw new InvalidOperationException($"{path} path stalled: {sent} sent, {got} received in 5 s");
                }

                continue;
            }

            got += n;
            idleSince = Environment.TickCount64;
        }

        return bytes;
    }
}
