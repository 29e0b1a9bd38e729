using System.Buffers;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Netmem.Rings;

namespace Netmem.Benchmarks;

/// <summary>
/// End-to-end receive through a SimNic: the benchmark thread injects a fixed number of UDP
/// frames (the wire) and consumes them from the socket, while the queue's poll thread parses,
/// places and delivers them. Three pipelines doing the same work in the same run:
/// <list type="bullet">
/// <item><b>Devmem</b>: queue bound to a memfd region; payload lands in <c>net_iov</c>s by device
/// DMA; the consumer gets Dmabuf records, reads each datagram's first 8 bytes through the region,
/// and hands the tokens back with DONTNEED.</item>
/// <item><b>Readable</b>: header-data split off; the frame lands in a readable page and
/// <c>Receive</c> copies the payload into the consumer's buffer (Linear records).</item>
/// <item><b>ArrayPool</b>: a poll thread takes frames from the same kind of FIFO, parses them with
/// the same <see cref="IpPacketParser"/>, rents a buffer from <see cref="ArrayPool{T}.Shared"/>,
/// copies the payload, and passes it through a bounded <see cref="Channel{T}"/>; the consumer
/// reads the first 8 bytes and returns the buffer.</item>
/// </list>
/// One operation is one packet (<see cref="Frames"/> per invocation). Packets/s = 1e9 / mean(ns);
/// Gbit/s = packets/s × payload × 8 / 1e9. Allocated bytes per operation are per packet.
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "BenchmarkDotNet disposes through [GlobalCleanup].")]
public class SimNicBenchmarks
{
    /// <summary>Frames per invocation.</summary>
    public const int Frames = 4096;

    private const ushort Port = 9000;

    private SimNic? _devmemNic;
    private SimNic? _readableNic;
    private DmabufRegion? _region;
    private DmabufBindingHandle? _handle;
    private DevmemSocket? _devmemSocket;
    private DevmemSocket? _readableSocket;
    private ArrayPoolPipeline? _arrayPool;
    private byte[] _frame = [];
    private int _frameLength;
    private readonly DmabufCmsg[] _cmsgs = new DmabufCmsg[64];
    private readonly uint[] _tokens = new uint[64];
    private byte[] _linear = [];
    private bool _startOfDatagram = true;

    [Params(64, 1500, 9000)]
    public int PayloadSize { get; set; }

    /// <summary>Frames per invocation; lowered by the smoke test.</summary>
    public int FrameCount { get; set; } = Frames;

    [GlobalSetup]
    public void Setup()
    {
        byte[] payload = new byte[PayloadSize];
        FrameBuilder.FillPayload(payload, 1);
        _frame = new byte[PayloadSize + 128];
        _frameLength = FrameBuilder.BuildUdp(_frame, false, 0x0A000001, 0x0A000002, 1234, Port, payload);
        var options = new SimNicOptions { RxQueues = 1, Mtu = 9216, FifoSlots = 1024, RxRingSize = 256, PoolSize = 1024 };

        _devmemNic = new SimNic("bench-devmem", options);
        _region = DmabufRegion.CreateMemfd("bench", 64 << 20);
        _handle = _devmemNic.Device.BindDmabuf(_region, [0]);
        _devmemSocket = _devmemNic.OpenSocket(FlowKey.Udp(Port), maxOutstanding: 8192);

        _readableNic = new SimNic("bench-readable", options with { HeaderDataSplit = false });
        _readableSocket = _readableNic.OpenSocket(FlowKey.Udp(Port), maxOutstanding: 8192);
        _linear = new byte[64 * (PayloadSize + 64)];

        _arrayPool = new ArrayPoolPipeline(1024, options.MaxFrame);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _arrayPool?.Dispose();
        _handle?.Dispose();
        _devmemNic?.Dispose();
        _readableNic?.Dispose();
        _region?.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Frames)]
    public long Devmem() => Run(_devmemNic!, _devmemSocket!, readThroughRegion: true);

    [Benchmark(OperationsPerInvoke = Frames)]
    public long Readable() => Run(_readableNic!, _readableSocket!, readThroughRegion: false);

    [Benchmark(OperationsPerInvoke = Frames, Baseline = true)]
    public long ArrayPoolPipeline() => _arrayPool!.Run(_frame.AsSpan(0, _frameLength), FrameCount);

    /// <summary>Injects <see cref="FrameCount"/> frames and consumes them; returns a checksum of the first bytes read.</summary>
    private long Run(SimNic nic, DevmemSocket socket, bool readThroughRegion)
    {
        ReadOnlySpan<byte> frame = _frame.AsSpan(0, _frameLength);
        long dropsAtStart = nic.QueueCounters(0).Drops;
        int sent = 0;
        int received = 0;
        long sum = 0;
        SpinWait spin = default;

        // Ends when every frame was received or counted as dropped (none are in a clean run).
        while (received + (nic.QueueCounters(0).Drops - dropsAtStart) < FrameCount)
        {
            while (sent < FrameCount && nic.Inject(0, frame))
            {
                sent++;
            }

            int n = socket.Receive(_cmsgs, _linear, out _);
            if (n == 0)
            {
                spin.SpinOnce(sleep1Threshold: -1);
                continue;
            }

            int t = 0;
            for (int i = 0; i < n; i++)
            {
                ref DmabufCmsg c = ref _cmsgs[i];
                if (c.Type == DevmemCmsgType.Dmabuf)
                {
                    _tokens[t++] = c.FragToken;
                    if (readThroughRegion && _startOfDatagram)
                    {
                        sum += _region!.GetSpan((long)c.FragOffset, 1)[0];
                    }
                }
                else if (_startOfDatagram)
                {
                    sum += _linear[c.LinearOffset];
                }

                _startOfDatagram = c.IsEndOfPacket;
                if (c.IsEndOfPacket)
                {
                    received++;
                }
            }

            if (t != 0)
            {
                socket.DontNeed(_tokens.AsSpan(0, t));
            }
        }

        return sum;
    }
}

/// <summary>
/// The peer pipeline: a FIFO of frame slots (as SimNic's wire), a poll thread that parses with
/// <see cref="IpPacketParser"/>, rents from <see cref="ArrayPool{T}.Shared"/> and copies the
/// payload, and a bounded channel to the consumer.
/// </summary>
internal sealed class ArrayPoolPipeline : IDisposable
{
    private readonly byte[][] _slots;
    private readonly int[] _lengths;
    private readonly PtrRing _free;
    private readonly PtrRing _ready;
    private readonly Channel<(byte[] Buffer, int Length)> _channel;
    private readonly Thread _poll;
    private volatile bool _exit;

    public ArrayPoolPipeline(int fifoSlots, int maxFrame)
    {
        _slots = new byte[fifoSlots][];
        _lengths = new int[fifoSlots];
        _free = new PtrRing(fifoSlots);
        _ready = new PtrRing(fifoSlots);
        for (int i = 0; i < fifoSlots; i++)
        {
            _slots[i] = new byte[maxFrame + 64];
            _free.TryEnqueue((nuint)i);
        }

        _channel = Channel.CreateBounded<(byte[], int)>(new BoundedChannelOptions(fifoSlots) { SingleReader = true, SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
        _poll = new Thread(PollLoop) { IsBackground = true, Name = "arraypool-poll" };
        _poll.Start();
    }

    /// <summary>Wire side: copies a frame into a slot; false when the FIFO is full.</summary>
    public bool Inject(ReadOnlySpan<byte> frame)
    {
        if (!_free.TryDequeue(out nuint slot))
        {
            return false;
        }

        frame.CopyTo(_slots[(int)slot]);
        _lengths[(int)slot] = frame.Length;
        _ready.TryEnqueue(slot);
        return true;
    }

    /// <summary>Injects and consumes <paramref name="count"/> frames; returns a checksum of the first bytes read.</summary>
    public long Run(ReadOnlySpan<byte> frame, int count)
    {
        ChannelReader<(byte[] Buffer, int Length)> reader = _channel.Reader;
        int sent = 0;
        int got = 0;
        long sum = 0;
        SpinWait spin = default;
        while (got < count)
        {
            while (sent < count && Inject(frame))
            {
                sent++;
            }

            bool any = false;
            while (reader.TryRead(out (byte[] Buffer, int Length) item))
            {
                sum += item.Buffer[0];
                ArrayPool<byte>.Shared.Return(item.Buffer);
                got++;
                any = true;
            }

            if (!any)
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }

        return sum;
    }

    private void PollLoop()
    {
        ChannelWriter<(byte[], int)> writer = _channel.Writer;
        Span<nuint> batch = stackalloc nuint[32];
        SpinWait idle = default;
        while (!_exit)
        {
            int n = _ready.DequeueBurst(batch);
            if (n == 0)
            {
                idle.SpinOnce(sleep1Threshold: -1);
                continue;
            }

            idle = default;
            for (int i = 0; i < n; i++)
            {
                int slot = (int)batch[i];
                ReadOnlySpan<byte> f = _slots[slot].AsSpan(0, _lengths[slot]);
                if (IpPacketParser.ParseEthernet(f, out IpPacketInfo p) != IpDropReason.None)
                {
                    continue;
                }

                byte[] buf = ArrayPool<byte>.Shared.Rent(p.PayloadLength);
                f.Slice(p.HeaderLength, p.PayloadLength).CopyTo(buf);
                SpinWait full = default;
                while (!writer.TryWrite((buf, p.PayloadLength)))
                {
                    if (_exit)
                    {
                        return;
                    }

                    full.SpinOnce(sleep1Threshold: -1);
                }
            }

            _free.EnqueueBurst(batch[..n]);
        }
    }

    public void Dispose()
    {
        _exit = true;
        _poll.Join(TimeSpan.FromSeconds(10));
        _free.Dispose();
        _ready.Dispose();
    }
}
