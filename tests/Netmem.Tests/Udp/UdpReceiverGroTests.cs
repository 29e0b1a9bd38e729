using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Udp;
using Netmem.Native;
using Netmem.Tests.PagePools;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.UdpRx;

/// <summary>
/// UdpReceiver with <see cref="UdpReceiverOptions.Gro"/>: a UDP GSO sender's datagrams reach the
/// receiver coalesced, one buffer per send, and come out as one record per datagram, in order,
/// each holding its own pool reference on the shared buffer. Loopback, no root.
/// </summary>
public sealed class UdpReceiverGroTests(ITestOutputHelper output)
{
    private const int Segment = 64;
    private const int PerSend = 64;

    public static TheoryData<UdpReceivePath, bool> PathsAndFamilies => new()
    {
        { UdpReceivePath.IoUring, false },
        { UdpReceivePath.IoUring, true },
        { UdpReceivePath.RecvMmsg, false },
        { UdpReceivePath.RecvMmsg, true },
    };

    public static TheoryData<UdpReceivePath> Paths => [UdpReceivePath.IoUring, UdpReceivePath.RecvMmsg];

    private static UdpReceiver Open(UdpReceivePath path, bool ipv6 = false, int maxHeld = 8192, bool gro = true) => new(new UdpReceiverOptions
    {
        Path = path,
        Gro = gro,
        BufferRingEntries = 64,
        MaxHeld = maxHeld,
        LocalEndpoint = new IPEndPoint(ipv6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0),
        Name = "udp-gro-" + path,
    });

    /// <summary>
    /// Receives <paramref name="count"/> datagrams of <paramref name="sender"/> (bounded),
    /// checking each payload, its size, its source port and that they come in sequence order;
    /// returns each batch at once and gives the sender credit.
    /// </summary>
    private static int ReceiveInOrder(UdpReceiver rx, GsoSender sender, int count, int batchSize)
    {
        var batch = new UdpDatagram[batchSize];
        int next = 0;
        long deadline = Environment.TickCount64 + 60_000;
        while (next < count && Environment.TickCount64 < deadline)
        {
            int n = rx.Receive(batch, 100);
            for (int i = 0; i < n; i++)
            {
                UdpDatagram d = batch[i];
                Assert.True(FrameBuilder.VerifySequencePayload(rx.GetPayload(d), out ulong seq), $"datagram {next}: payload does not verify");
                Assert.Equal(UdpTraffic.Seq(0, next), seq);
                Assert.Equal(sender.SizeOf(next), d.Length);
                Assert.Equal(d.Length, d.OriginalLength);
                Assert.False(d.Truncated);
                Assert.Equal(sender.Port, d.Source.Port);
                next++;
            }

            rx.Return(batch.AsSpan(0, n));
            sender.Consumed(n);
        }

        return next;
    }

    [Theory]
    [MemberData(nameof(PathsAndFamilies))]
    public void Coalesced_datagrams_come_out_one_record_each_verified_in_order_and_every_buffer_comes_back(UdpReceivePath path, bool ipv6)
    {
        Requires.UdpPath(path);
        const int Count = 20_000;
        var rx = Open(path, ipv6);
        PagePool pool = rx.Pool;
        Assert.Equal(UdpReceiver.GroOrder, pool.Params.Order);
        using var sender = new GsoSender(rx.LocalEndpoint, Count, Segment, PerSend, shortLast: true);
        sender.Start();

        // A batch of 100 splits most buffers of 64 datagrams across two receives.
        int got = ReceiveInOrder(rx, sender, Count, batchSize: 100);
        sender.Join();
        UdpReceiverStats stats = rx.GetStats();
        rx.Dispose();

        output.WriteLine($"{path} ipv6={ipv6}: {stats}");
        Assert.Equal(Count, got);
        Assert.Equal(Count, stats.Datagrams);
        Assert.True(stats.Coalesced > 0, "the kernel coalesced nothing: UDP_GRO was not in effect");
        Assert.True(stats.Coalesced <= (Count + PerSend - 1) / PerSend);
        Assert.Equal(0, stats.KernelDrops);
        Assert.Equal(0, stats.Truncated);
        Assert.Equal(0, pool.Inflight);
        Assert.True(pool.IsFreed);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void A_shared_buffer_recycles_only_after_its_last_record_is_returned_from_any_thread(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        using var rx = Open(path);
        using (var sender = new GsoSender(rx.LocalEndpoint, PerSend, Segment, PerSend, shortLast: false))
        {
            sender.SendAll();
        }

        var batch = new UdpDatagram[PerSend];
        int n = 0;
        long deadline = Environment.TickCount64 + 10_000;
        while (n < PerSend && Environment.TickCount64 < deadline)
        {
            n += rx.Receive(batch.AsSpan(n), 100);
        }

        Assert.Equal(PerSend, n);
        NetmemRef buffer = batch[0].Netmem;
        Assert.All(batch, d => Assert.Equal(buffer, d.Netmem));
        Assert.Equal(PerSend, buffer.PoolRefCount);
        Assert.Equal(1, rx.GetStats().Coalesced);

        // All but one, from other threads in a shuffled order.
        ulong start = PoolTestKit.Recycled(rx.Pool.GetStats());
        int[] order = Enumerable.Range(1, PerSend - 1).OrderBy(i => (i * 7919) % 61).ToArray();
        Parallel.ForEach(order, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => rx.Return(batch[i]));
        Assert.Equal(1, buffer.PoolRefCount);
        Assert.Equal(1, rx.Held);
        Assert.Equal(start, PoolTestKit.Recycled(rx.Pool.GetStats()));
        var twice = Assert.Throws<PagePoolMisuseException>(() => rx.Return(batch[5]));
        Assert.Equal(PagePoolMisuse.DoublePut, twice.Misuse);

        // 63 returns recycled nothing; the last one recycles the buffer, once.
        ulong before = PoolTestKit.Recycled(rx.Pool.GetStats());
        rx.Return(batch[0]);
        Assert.Equal(before + 1, PoolTestKit.Recycled(rx.Pool.GetStats()));
        Assert.Equal(0, rx.Held);
        Assert.Throws<PagePoolMisuseException>(() => rx.Return(batch[0]));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void A_max_held_below_one_buffer_hands_its_datagrams_out_across_receives_in_order(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        using var rx = Open(path, maxHeld: 10);
        using var sender = new GsoSender(rx.LocalEndpoint, 3 * PerSend, Segment, PerSend, shortLast: true);
        sender.SendAll();

        // Each receive may take at most 10 records, whatever the batch: a buffer of 64 goes out in 7 receives.
        Assert.Equal(3 * PerSend, ReceiveInOrder(rx, sender, 3 * PerSend, batchSize: 64));
        Assert.Equal(3 * PerSend, rx.GetStats().Datagrams);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Disposing_with_records_held_and_datagrams_not_yet_handed_out_leaves_nothing_in_flight(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        var rx = Open(path);
        PagePool pool = rx.Pool;
        using (var sender = new GsoSender(rx.LocalEndpoint, 2 * PerSend, Segment, PerSend, shortLast: false))
        {
            sender.SendAll();
        }

        var batch = new UdpDatagram[10];
        int n = 0;
        long deadline = Environment.TickCount64 + 10_000;
        while (n == 0 && Environment.TickCount64 < deadline)
        {
            n = rx.Receive(batch, 100);
        }

        Assert.Equal(10, n);
        rx.Return(batch.AsSpan(0, 3));
        rx.Dispose();

        UdpReceiverStats stats = rx.GetStats();
        output.WriteLine(stats.ToString());
        Assert.True(stats.DiscardedAtClose >= PerSend - 10, $"the {PerSend - 10} datagrams of the first buffer not handed out count as discarded: {stats.DiscardedAtClose}");
        Assert.Equal(0, pool.Inflight);
        Assert.True(pool.IsFreed);
        Assert.Throws<PagePoolMisuseException>(() => rx.Return(batch[4]));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Without_gro_a_gso_senders_datagrams_arrive_one_buffer_each(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        using var rx = Open(path, gro: false);
        Assert.Equal(0, rx.Pool.Params.Order);
        using var sender = new GsoSender(rx.LocalEndpoint, 2 * PerSend, Segment, PerSend, shortLast: true);
        sender.SendAll();
        Assert.Equal(2 * PerSend, ReceiveInOrder(rx, sender, 2 * PerSend, batchSize: 32));
        Assert.Equal(0, rx.GetStats().Coalesced);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Plain_datagrams_still_arrive_whole_with_gro_on(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        using var rx = Open(path);
        Func<ulong, int> size = UdpTraffic.Mixed(1400);
        UdpTraffic.SendNow(rx.LocalEndpoint, 50, size);
        var tally = new UdpTraffic(rx.LocalEndpoint, 1, 50, size);
        var batch = new UdpDatagram[16];
        long deadline = Environment.TickCount64 + 10_000;
        while (tally.Verified + tally.Bad < 50 && Environment.TickCount64 < deadline)
        {
            int n = rx.Receive(batch, 100);
            for (int i = 0; i < n; i++)
            {
                tally.Check(rx.GetPayload(batch[i]), batch[i]);
            }

            rx.Return(batch.AsSpan(0, n));
        }

        Assert.Equal(50, tally.Verified);
        Assert.Equal(0, tally.Bad);
        Assert.Equal(0, rx.GetStats().Coalesced);
    }

    [Fact]
    public void Gro_into_a_region_is_refused_with_eopnotsupp_because_its_buffers_are_4_KiB()
    {
        using var region = DmabufRegion.CreateMemfd("udp-region-gro", 1 << 20);
        var e = Assert.Throws<NetmemException>(() => new UdpReceiver(new UdpReceiverOptions { Region = region, Gro = true }));
        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Contains("Gro", e.Message);
    }

    /// <summary>A UDP GSO sender on its own socket: datagram i carries sequence (0, i).</summary>
    private sealed class GsoSender : IDisposable
    {
        private readonly Socket _socket;
        private readonly IPEndPoint _target;
        private readonly int _count;
        private readonly int _segment;
        private readonly int _perSend;
        private readonly bool _shortLast;
        private Thread? _thread;
        private long _consumed;

        public GsoSender(IPEndPoint target, int count, int segment, int perSend, bool shortLast)
        {
            _target = target;
            _count = count;
            _segment = segment;
            _perSend = perSend;
            _shortLast = shortLast;
            _socket = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            _socket.Bind(new IPEndPoint(target.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0));
            _socket.SetRawSocketOption(UdpSocketNative.IPPROTO_UDP, UdpSocketNative.UDP_SEGMENT, BitConverter.GetBytes(segment));
            Port = ((IPEndPoint)_socket.LocalEndPoint!).Port;
        }

        public int Port { get; }

        /// <summary>Every datagram is one segment long, except (with shortLast) the last of each send, which is half.</summary>
        public int SizeOf(int index) =>
            _shortLast && index == Math.Min(((index / _perSend) + 1) * _perSend, _count) - 1 ? _segment / 2 : _segment;

        public void Consumed(int n) => Interlocked.Add(ref _consumed, n);

        public void Start()
        {
            _thread = new Thread(SendAll) { IsBackground = true, Name = "udp-gso-sender" };
            _thread.Start();
        }

        public void Join() => _thread?.Join();

        /// <summary>Sends everything, at most 4096 datagrams ahead of what the receiver consumed (bounded wait).</summary>
        public void SendAll()
        {
            byte[] buf = new byte[65536];
            long deadline = Environment.TickCount64 + 60_000;
            for (int first = 0; first < _count; first += _perSend)
            {
                SpinWait spin = default;
                while (first - Interlocked.Read(ref _consumed) > 4096 && Environment.TickCount64 < deadline)
                {
                    spin.SpinOnce();
                }

                int k = Math.Min(_perSend, _count - first);
                int len = 0;
                for (int i = 0; i < k; i++)
                {
                    int size = SizeOf(first + i);
                    FrameBuilder.FillSequencePayload(buf.AsSpan(len, size), UdpTraffic.Seq(0, first + i));
                    len += size;
                }

                _socket.SendTo(buf.AsSpan(0, len), SocketFlags.None, _target);
            }
        }

        public void Dispose()
        {
            Interlocked.Exchange(ref _consumed, long.MaxValue / 2);
            Join();
            _socket.Dispose();
        }
    }
}
