using System.Buffers;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Netmem.Tool.Relay;

namespace Netmem.Benchmarks;

/// <summary>
/// A UDP relay, per datagram: generator to relay to far end, two ways in the same run.
/// <list type="bullet">
/// <item><b>ZeroCopyRelay</b>: <see cref="DevmemRelay"/> (<c>netmem relay</c>'s engine) over a SimNic: the benchmark thread
/// injects frames into queue 0 (bound to a region that is also bound for transmit), polls the
/// relay, which sends each datagram from the region fragments it arrived in and returns its
/// tokens on the send's completion, and drains the far end's socket on queue 1 (system pages,
/// so the far end's receive copies the payload out, as a kernel socket's would). The NIC's rx
/// poll threads and its tx thread do the device's part.</item>
/// <item><b>SocketCopyRelay</b> (baseline): three <see cref="Socket"/>s on loopback; the
/// benchmark thread sends to the relay socket, the relay does <c>ReceiveFrom</c> into a buffer
/// rented from <see cref="ArrayPool{T}.Shared"/> and <c>SendTo</c> the far socket, and the far
/// socket receives. The kernel's loopback delivery runs inside each send.</item>
/// </list>
/// At most <see cref="Window"/> datagrams are between generator and far end at once in both, so
/// nothing overflows (a lost datagram fails the invocation after 5 s instead of hanging). One
/// operation is one datagram relayed and received; allocated bytes are per datagram.
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "BenchmarkDotNet disposes through [GlobalCleanup].")]
public class RelayBenchmarks
{
    /// <summary>Datagrams per invocation.</summary>
    public const int N = 4096;

    /// <summary>Datagrams between generator and far end at most.</summary>
    public const int Window = 64;

    private const ushort RelayPort = 9200;
    private const ushort FarPort = 9201;

    private SimNic? _nic;
    private DmabufRegion? _region;
    private DmabufBindingHandle? _rx;
    private DmabufBindingHandle? _tx;
    private DevmemRelay? _relay;
    private DevmemSocket? _far;
    private readonly DmabufCmsg[] _cmsgs = new DmabufCmsg[64];
    private byte[] _linear = [];
    private byte[] _frame = [];

    private Socket? _source;
    private Socket? _relaySocket;
    private Socket? _farSocket;
    private SocketAddress? _relayAddress;
    private SocketAddress? _farAddress;
    private SocketAddress? _from;
    private byte[] _payload = [];
    private readonly byte[] _farBuffer = new byte[65536];

    /// <summary>UDP payload bytes per datagram.</summary>
    [Params(64, 1400)]
    public int Size { get; set; }

    /// <summary>Datagrams per invocation; <see cref="N"/> under BenchmarkDotNet (it must match OperationsPerInvoke).</summary>
    public int Count { get; set; } = N;

    [GlobalSetup]
    public void Setup()
    {
        _payload = new byte[Size];
        FrameBuilder.FillPayload(_payload, 1);
        _frame = new byte[FrameBuilder.UdpV4Overhead + Size];
        FrameBuilder.BuildUdp(_frame, false, 0xC0000201, 0xC0000264, 40000, RelayPort, _payload);

        _nic = new SimNic("bench-relay", new SimNicOptions { RxQueues = 2, Mtu = 9000 });
        _region = DmabufRegion.CreateMemfd("bench-relay", 64 << 20);
        _rx = _nic.Device.BindDmabuf(_region, [0]);
        _tx = _nic.Device.BindDmabufTx(_region);
        _nic.LoopTxTo(_nic, 1);
        DevmemSocket relay = _nic.OpenSocket(FlowKey.Udp(RelayPort));
        relay.ZeroCopy = true;
        relay.Connect(_nic.Device, new IPEndPoint(IPAddress.Parse("192.0.2.100"), RelayPort), new IPEndPoint(IPAddress.Parse("192.0.2.200"), FarPort));
        _relay = new DevmemRelay(relay, _rx.BindingId, _tx.BindingId, _nic.Options.MaxFrame);
        _far = _nic.OpenSocket(FlowKey.Udp(FarPort));
        _linear = new byte[_cmsgs.Length * (Size + 64)];

        _source = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _source.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _relaySocket = Bound();
        _farSocket = Bound();
        _relayAddress = _relaySocket.LocalEndPoint!.Serialize();
        _farAddress = _farSocket.LocalEndPoint!.Serialize();
        _from = new SocketAddress(AddressFamily.InterNetwork);
    }

    private static Socket Bound()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 4 << 20, ReceiveTimeout = 5000 };
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return s;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (_relay is not null)
        {
            _relay.Flush(TimeSpan.FromSeconds(5));
            Console.WriteLine($"// RelayBenchmarks({Size}): relayed {_relay.Relayed}, completed {_relay.Completed}, relay bytes copied {_relay.BytesCopied}, enobufs waits {_relay.Blocked}");
        }

        _rx?.Dispose();
        _tx?.Dispose();
        _nic?.Dispose();
        _region?.Dispose();
        _source?.Dispose();
        _relaySocket?.Dispose();
        _farSocket?.Dispose();
        _relay = null;
    }

    /// <summary>The zero-copy relay over SimNic; returns the payload bytes the far end received.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public long ZeroCopyRelay()
    {
        SimNic nic = _nic!;
        DevmemRelay relay = _relay!;
        DevmemSocket far = _far!;
        int injected = 0;
        int got = 0;
        long bytes = 0;
        long idleSince = 0;
        SpinWait spin = default;
        while (got < Count)
        {
            bool progress = false;
            while (injected < Count && injected - got < Window && nic.FreeFifoSlots(0) != 0)
            {
                nic.Inject(0, _frame);
                injected++;
                progress = true;
            }

            progress |= relay.Poll() != 0;
            int n = far.Receive(_cmsgs, _linear, out _);
            for (int i = 0; i < n; i++)
            {
                bytes += _cmsgs[i].FragSize;
                if (_cmsgs[i].IsEndOfPacket)
                {
                    got++;
                }
            }

            if (progress || n != 0)
            {
                idleSince = 0;
                spin = default;
                continue;
            }

            idleSince = idleSince == 0 ? Stopwatch.GetTimestamp() : idleSince;
            if (Stopwatch.GetElapsedTime(idleSince) > TimeSpan.FromSeconds(5))
            {
                throw new TimeoutException($"ZeroCopyRelay: {got} of {Count} datagrams arrived; the rest were lost (drops q0 {nic.QueueCounters(0).Drops}, q1 {nic.QueueCounters(1).Drops})");
            }

            spin.SpinOnce(sleep1Threshold: -1);
        }

        return bytes;
    }

    /// <summary>The baseline: ReceiveFrom into a pooled buffer, SendTo the far socket, on loopback; returns the payload bytes the far end received.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public long SocketCopyRelay()
    {
        Socket source = _source!;
        Socket relay = _relaySocket!;
        Socket far = _farSocket!;
        long bytes = 0;
        for (int sent = 0; sent < Count; sent += Window)
        {
            int burst = Math.Min(Window, Count - sent);
            for (int i = 0; i < burst; i++)
            {
                source.SendTo(_payload, SocketFlags.None, _relayAddress!);
            }

            for (int i = 0; i < burst; i++)
            {
                byte[] buf = ArrayPool<byte>.Shared.Rent(2048);
                int len = relay.ReceiveFrom(buf, SocketFlags.None, _from!);
                relay.SendTo(buf.AsSpan(0, len), SocketFlags.None, _farAddress!);
                ArrayPool<byte>.Shared.Return(buf);
            }

            for (int i = 0; i < burst; i++)
            {
                bytes += far.ReceiveFrom(_farBuffer, SocketFlags.None, _from!);
            }
        }

        return bytes;
    }
}
