using System.Net;
using System.Net.Sockets;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Udp;
using Netmem.Native;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.UdpRx;

/// <summary>
/// UdpReceiver's contract, one behaviour each, on loopback and without root: buffer-ring
/// exhaustion and recovery, truncation, address in use, SO_REUSEPORT, IPv6, the fallback when
/// io_uring is unavailable, misuse of records, and no GC allocation per datagram.
/// </summary>
public sealed class UdpReceiverBehaviourTests
{
    public static TheoryData<UdpReceivePath> Paths => [UdpReceivePath.IoUring, UdpReceivePath.RecvMmsg];

    /// <summary>Receives exactly <paramref name="count"/> datagrams (bounded), verifying each, and returns them.</summary>
    private static UdpTraffic ReceiveAll(UdpReceiver rx, int count, Func<ulong, int> sizeOf, int batchSize = 32)
    {
        var tally = new UdpTraffic(rx.LocalEndpoint, 1, count, sizeOf);
        var batch = new UdpDatagram[batchSize];
        long deadline = Environment.TickCount64 + 30_000;
        while (tally.Verified + tally.Bad < count && Environment.TickCount64 < deadline)
        {
            int n = rx.Receive(batch, 100);
            for (int i = 0; i < n; i++)
            {
                tally.Check(rx.GetPayload(batch[i]), batch[i]);
            }

            rx.Return(batch.AsSpan(0, n));
        }

        return tally;
    }

    [Fact]
    public void An_exhausted_buffer_ring_ends_the_multishot_receive_which_is_counted_rearmed_and_loses_nothing()
    {
        Requires.IoUring();
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.IoUring, BufferRingEntries = 8 });
        Func<ulong, int> size = UdpTraffic.Mixed(200);

        // 100 datagrams wait on the socket before the request is armed: 8 buffers cannot take them.
        UdpTraffic.SendNow(rx.LocalEndpoint, 100, size);
        UdpTraffic tally = ReceiveAll(rx, 100, size, batchSize: 4);

        UdpReceiverStats stats = rx.GetStats();
        Assert.Equal(100, tally.Verified);
        Assert.Equal(0, tally.Bad);
        Assert.Equal(100, stats.Datagrams);
        Assert.True(stats.BufferRingExhausted >= 1, $"expected ENOBUFS at least once: {stats}");
        Assert.Equal(stats.BufferRingExhausted + stats.OtherTerminations + 1, stats.Arms);
        Assert.Equal(0, stats.KernelDrops);
        Assert.Equal(0, stats.Held);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void A_datagram_larger_than_its_buffer_arrives_cut_to_the_buffer_and_flagged_truncated(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = path });
        int len = rx.MaxPayload + 100;
        UdpTraffic.SendNow(rx.LocalEndpoint, 1, _ => len);

        var batch = new UdpDatagram[4];
        int n = rx.Receive(batch, 10_000);

        Assert.Equal(1, n);
        UdpDatagram d = batch[0];
        Assert.True(d.Truncated);
        Assert.Equal(rx.MaxPayload, d.Length);
        Assert.Equal(len, d.OriginalLength);
        byte[] expected = new byte[len];
        FrameBuilder.FillSequencePayload(expected, UdpTraffic.Seq(0, 0));
        Assert.True(d.Payload.SequenceEqual(expected.AsSpan(0, d.Length)));
        Assert.Equal(1, rx.GetStats().Truncated);
        rx.Return(d);
        Assert.Equal(0, rx.Held);
    }

    [Fact]
    public void Binding_a_port_in_use_fails_with_EADDRINUSE_and_says_how_to_share_it()
    {
        using var first = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.RecvMmsg });
        int poolsBefore = PagePool.All.Count(p => p.Name == "udp-taken");

        var e = Assert.Throws<NetmemException>(() => new UdpReceiver(new UdpReceiverOptions
        {
            LocalEndpoint = first.LocalEndpoint,
            Path = UdpReceivePath.RecvMmsg,
            Name = "udp-taken",
        }));

        Assert.Equal(Errno.EADDRINUSE, e.Errno);
        Assert.Contains("address already in use", e.Message, StringComparison.Ordinal);
        Assert.Contains("ReusePort", e.Message, StringComparison.Ordinal);
        Assert.Contains(first.LocalEndpoint.ToString(), e.Message, StringComparison.Ordinal);
        Assert.Equal(poolsBefore, PagePool.All.Count(p => p.Name == "udp-taken" && !p.IsFreed));
    }

    [Fact]
    public void Receivers_with_ReusePort_share_one_port_and_between_them_get_every_datagram()
    {
        using var a = new UdpReceiver(new UdpReceiverOptions { ReusePort = true, Path = UdpReceivePath.RecvMmsg });
        using var b = new UdpReceiver(new UdpReceiverOptions { LocalEndpoint = a.LocalEndpoint, ReusePort = true, Path = UdpReceivePath.RecvMmsg });
        Assert.Equal(a.LocalEndpoint, b.LocalEndpoint);

        // Several source ports, so the kernel's hash spreads them.
        for (int s = 0; s < 8; s++)
        {
            UdpTraffic.SendNow(a.LocalEndpoint, 10, _ => 64, sender: s);
        }

        var batch = new UdpDatagram[64];
        long got = 0;
        long deadline = Environment.TickCount64 + 30_000;
        while (got < 80 && Environment.TickCount64 < deadline)
        {
            foreach (UdpReceiver rx in new[] { a, b })
            {
                int n = rx.Receive(batch, 10);
                got += n;
                rx.Return(batch.AsSpan(0, n));
            }
        }

        Assert.Equal(80, got);
        Assert.Equal(80, a.GetStats().Datagrams + b.GetStats().Datagrams);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void IPv6_datagrams_arrive_verified_with_their_IPv6_source(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        if (!Socket.OSSupportsIPv6)
        {
            Requires.Unmet("IPv6 is disabled on this machine");
        }

        using var rx = new UdpReceiver(new UdpReceiverOptions { LocalEndpoint = new IPEndPoint(IPAddress.IPv6Loopback, 0), Path = path });
        Func<ulong, int> size = UdpTraffic.Mixed(1400);
        int port = UdpTraffic.SendNow(rx.LocalEndpoint, 200, size);

        var tally = new UdpTraffic(rx.LocalEndpoint, 1, 200, size);
        var batch = new UdpDatagram[16];
        long deadline = Environment.TickCount64 + 30_000;
        while (tally.Verified + tally.Bad < 200 && Environment.TickCount64 < deadline)
        {
            int n = rx.Receive(batch, 100);
            for (int i = 0; i < n; i++)
            {
                tally.Check(batch[i].Payload, batch[i]);
                Assert.Equal(AddressFamily.InterNetworkV6, batch[i].Source.Family);
                Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, port), batch[i].Source.ToIPEndPoint());
            }

            rx.Return(batch.AsSpan(0, n));
        }

        Assert.Equal(200, tally.Verified);
        Assert.Equal(AddressFamily.InterNetworkV6, rx.LocalEndpoint.AddressFamily);
    }

    [Fact]
    public void An_IPv4_source_is_reported_as_address_and_port_without_allocation()
    {
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.RecvMmsg });
        int port = UdpTraffic.SendNow(rx.LocalEndpoint, 1, _ => 32);
        var batch = new UdpDatagram[1];

        Assert.Equal(1, rx.Receive(batch, 10_000));
        UdpEndpoint src = batch[0].Source;
        Assert.Equal(AddressFamily.InterNetwork, src.Family);
        Assert.Equal(port, src.Port);
        Assert.Equal(0x7F000001UL, src.AddressLow);
        Assert.Equal($"127.0.0.1:{port}", src.ToString());
        rx.Return(batch[0]);
    }

    [Theory]
    [InlineData(38)] // ENOSYS: a kernel without io_uring, or a seccomp filter answering ENOSYS
    [InlineData(Errno.EPERM)] // kernel.io_uring_disabled, or a seccomp filter answering EPERM
    public void When_io_uring_is_unavailable_Auto_falls_back_to_recvmmsg_and_says_why(int errno)
    {
        using var rx = new UdpReceiver(new UdpReceiverOptions { SimulatedUringErrno = errno });

        Assert.Equal(UdpReceivePath.RecvMmsg, rx.Path);
        Assert.Equal(UdpReceivePath.RecvMmsg, rx.GetStats().Path);
        Assert.Contains("io_uring_setup", rx.FallbackReason, StringComparison.Ordinal);
        Assert.Contains(Errno.Name(errno), rx.FallbackReason, StringComparison.Ordinal);

        UdpTraffic tally;
        UdpTraffic.SendNow(rx.LocalEndpoint, 50, UdpTraffic.Mixed(1000));
        tally = ReceiveAll(rx, 50, UdpTraffic.Mixed(1000));
        Assert.Equal(50, tally.Verified);
    }

    [Fact]
    public void Forcing_io_uring_where_it_is_unavailable_fails_with_its_errno_and_leaves_no_pool()
    {
        var e = Assert.Throws<NetmemException>(() => new UdpReceiver(new UdpReceiverOptions
        {
            Path = UdpReceivePath.IoUring,
            SimulatedUringErrno = Errno.EPERM,
            Name = "udp-forced-uring",
        }));

        Assert.Equal(Errno.EPERM, e.Errno);
        Assert.Contains("io_uring is unavailable", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(PagePool.All, p => p.Name == "udp-forced-uring" && !p.IsFreed);
    }

    [Fact]
    public void Auto_runs_io_uring_where_the_kernel_allows_it()
    {
        Requires.IoUring();
        using var rx = new UdpReceiver();
        Assert.Equal(UdpReceivePath.IoUring, rx.Path);
        Assert.Null(rx.FallbackReason);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Returning_a_record_twice_is_refused_as_the_pool_refuses_a_double_put_and_changes_nothing(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = path });
        UdpTraffic.SendNow(rx.LocalEndpoint, 1, _ => 100);
        var batch = new UdpDatagram[1];
        Assert.Equal(1, rx.Receive(batch, 10_000));
        rx.Return(batch[0]);
        long inflight = rx.Pool.Inflight;
        PagePoolStats before = rx.Pool.GetStats();

        var e = Assert.Throws<PagePoolMisuseException>(() => rx.Return(batch[0]));

        Assert.Equal(PagePoolMisuse.DoublePut, e.Misuse);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("already returned", e.Message, StringComparison.Ordinal);
        Assert.Equal(inflight, rx.Pool.Inflight);
        Assert.Equal(before.RecycleCached + before.RecycleRing, rx.Pool.GetStats().RecycleCached + rx.Pool.GetStats().RecycleRing);
        Assert.Equal(0, rx.Held);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void A_record_returned_after_dispose_is_refused_because_dispose_took_its_buffer_back(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        var rx = new UdpReceiver(new UdpReceiverOptions { Path = path });
        UdpTraffic.SendNow(rx.LocalEndpoint, 3, _ => 100);
        var batch = new UdpDatagram[3];
        int n = 0;
        while (n < 3)
        {
            n += rx.Receive(batch.AsSpan(n), 10_000);
        }

        Assert.Equal(3, rx.Held);
        PagePool pool = rx.Pool;
        rx.Dispose();

        Assert.Equal(0, pool.Inflight);
        Assert.True(pool.IsFreed);
        var e = Assert.Throws<PagePoolMisuseException>(() => rx.Return(batch[1]));
        Assert.Equal(PagePoolMisuse.PutAfterZero, e.Misuse);
        Assert.Contains("after the receiver was disposed", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, pool.Inflight);
        Assert.Throws<ObjectDisposedException>(() => rx.TryReceive(batch));
    }

    [Fact]
    public void A_blocking_receive_while_the_caller_holds_MaxHeld_records_fails_with_ENOBUFS()
    {
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.RecvMmsg, MaxHeld = 4 });
        UdpTraffic.SendNow(rx.LocalEndpoint, 6, _ => 64);
        var batch = new UdpDatagram[8];
        int n = 0;
        while (n < 4)
        {
            n += rx.Receive(batch.AsSpan(n), 10_000);
        }

        Assert.Equal(4, n);
        var e = Assert.Throws<NetmemException>(() => rx.Receive(batch.AsSpan(4), 10_000));
        Assert.Equal(Errno.ENOBUFS, e.Errno);
        Assert.Contains("MaxHeld", e.Message, StringComparison.Ordinal);

        rx.Return(batch.AsSpan(0, 4));
        n = 0;
        while (n < 2)
        {
            n += rx.Receive(batch.AsSpan(n), 10_000);
        }

        Assert.Equal(2, n);
        rx.Return(batch.AsSpan(0, 2));
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Receiving_and_returning_a_steady_stream_allocates_nothing_on_the_GC_heap(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = path });
        var batch = new UdpDatagram[64];

        // Warm up: JIT, pool refills, first arm.
        UdpTraffic.SendNow(rx.LocalEndpoint, 200, _ => 64);
        Drain(rx, batch, 200);

        UdpTraffic.SendNow(rx.LocalEndpoint, 500, _ => 64, sender: 1);
        long before = GC.GetAllocatedBytesForCurrentThread();
        long got = Drain(rx, batch, 500);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(500, got);
        Assert.Equal(0, allocated);

        static long Drain(UdpReceiver rx, UdpDatagram[] batch, int count)
        {
            long got = 0;
            long deadline = Environment.TickCount64 + 30_000;
            while (got < count && Environment.TickCount64 < deadline)
            {
                int n = rx.Receive(batch, 100);
                got += n;
                rx.Return(batch.AsSpan(0, n));
            }

            return got;
        }
    }
}
