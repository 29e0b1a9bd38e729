using System.Net;
using System.Runtime.CompilerServices;
using Netmem.Devmem;
using Netmem.Native;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Devmem;

/// <summary>
/// Devmem transmit, core contract: <see cref="NetDevice.BindDmabufTx"/>, the refusals of
/// <see cref="DevmemSocket.SendDmabuf(uint, ReadOnlySpan{DmabufIov}, DevmemSendFlags)"/> with the
/// kernel's errnos, MSG_ZEROCOPY completions in order, and sends in flight across unbind and
/// close. The device's transmit entry holds packets until the test ends them.
/// </summary>
[Collection(DevmemCollection.Name)]
public sealed class DevmemTxTests : IDisposable
{
    private const long RegionSize = 64 * 4096;

    private readonly HeldTxOps _ops = new();
    private readonly NetDevice _dev;
    private readonly DmabufRegion _region = DmabufRegion.CreateMemfd("tx-test", RegionSize);
    private readonly DevmemSocket _socket = new(FlowKey.Udp(7000));
    private readonly DmabufBindingHandle _tx;

    public DevmemTxTests()
    {
        _dev = NewDevice("txdev", _ops);
        _tx = _dev.BindDmabufTx(_region);
        _socket.ZeroCopy = true;
        _socket.Connect(_dev, new IPEndPoint(IPAddress.Parse("10.9.0.1"), 7000), new IPEndPoint(IPAddress.Parse("10.9.0.2"), 7001));
    }

    public void Dispose()
    {
        _ops.CancelAll();
        _socket.Dispose();
        _tx.Dispose();
        _dev.Unregister();
        _region.Dispose();
    }

    private uint Id => (uint)_tx.BindingId;

    private static NetDevice NewDevice(string name, INetmemTxOps? ops)
    {
        var dev = new NetDevice(name, 1) { DmaDevice = new DmaDevice(name + "-dma"), TxOps = ops };
        dev.Register();
        dev.Up();
        return dev;
    }

    private static NetmemException Refused(int errno, Action send)
    {
        var e = Assert.Throws<NetmemException>(send);
        Assert.Equal(Errno.Name(errno), e.ErrnoName);
        return e;
    }

    /// <summary>Nothing of a refused send remains: no sequence number used, no binding reference kept.</summary>
    private void AssertNothingSent()
    {
        Assert.Equal(0, _socket.ZeroCopySends);
        Assert.Equal(0, _socket.SendsInFlight);
        Assert.Equal(0, _ops.Count);
        Assert.Equal(1, _tx.Binding.RefCount);
    }

    [Fact]
    public void Bind_tx_returns_a_tx_binding_of_the_device_whose_id_resolves()
    {
        Assert.Equal(DmabufDirection.Tx, _tx.Direction);
        Assert.Null(_tx.Provider);
        Assert.Same(_dev, _tx.Binding.NetDevice);
        Assert.Same(_tx.Binding, DmabufBinding.FromId(_tx.BindingId));
        Assert.Equal(RegionSize, _tx.Binding.Size);
    }

    [Fact]
    public void Bind_tx_is_refused_with_eopnotsupp_when_the_driver_cannot_transmit_netmem()
    {
        NetDevice dev = NewDevice("notx", ops: null);
        try
        {
            var e = Assert.Throws<NetmemException>(() => dev.BindDmabufTx(_region));
            Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
            Assert.Contains("Driver does not support netmem TX", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            dev.Unregister();
        }
    }

    [Fact]
    public void Bind_tx_is_refused_with_enodev_on_an_unregistered_device()
    {
        var dev = new NetDevice("unreg", 1) { DmaDevice = new DmaDevice("unreg-dma"), TxOps = _ops };
        Assert.Equal(Errno.ENODEV, Assert.Throws<NetmemException>(() => dev.BindDmabufTx(_region)).Errno);
    }

    [Fact]
    public void A_send_hands_the_device_one_fragment_per_net_iov_with_the_dma_address_of_the_offset()
    {
        int n = _socket.SendDmabuf(Id, [new DmabufIov(4096 - 100, 300), new DmabufIov(10 * 4096, 50)], DevmemSendFlags.ZeroCopy, out uint seq);

        Assert.Equal(350, n);
        Assert.Equal(0u, seq);
        DevmemTxPacket p = _ops[0];
        Assert.Equal(3, p.FragCount);
        Assert.Equal(350, p.PayloadLength);
        ulong dma0 = _tx.Binding.Segments[0].DmaAddress;
        Assert.Equal(new DevmemTxFrag(dma0 + 4096 - 100, 4096 - 100, 100), p.GetFrag(0));
        Assert.Equal(new DevmemTxFrag(dma0 + 4096, 4096, 200), p.GetFrag(1));
        Assert.Equal(new DevmemTxFrag(dma0 + (10 * 4096), 10 * 4096, 50), p.GetFrag(2));
        Assert.Equal(2, _tx.Binding.RefCount); // the packet's reference
        Assert.Equal(1, _socket.SendsInFlight);
    }

    [Fact]
    public void A_send_without_msg_zerocopy_is_refused_with_einval()
    {
        var e = Refused(Errno.EINVAL, () => _socket.SendDmabuf(Id, [new DmabufIov(0, 100)], DevmemSendFlags.None));
        Assert.Contains("MSG_ZEROCOPY", e.Message, StringComparison.Ordinal);
        AssertNothingSent();
    }

    [Fact]
    public void A_send_on_a_socket_without_so_zerocopy_is_refused_with_einval()
    {
        _socket.ZeroCopy = false;
        var e = Refused(Errno.EINVAL, () => _socket.SendDmabuf(Id, [new DmabufIov(0, 100)]));
        Assert.Contains("SO_ZEROCOPY", e.Message, StringComparison.Ordinal);
        AssertNothingSent();
    }

    [Fact]
    public void A_send_naming_an_unknown_id_is_refused_with_einval()
    {
        var e = Refused(Errno.EINVAL, () => _socket.SendDmabuf(987654, [new DmabufIov(0, 100)]));
        Assert.Contains("no binding has that id", e.Message, StringComparison.Ordinal);
        AssertNothingSent();
    }

    [Fact]
    public void A_send_naming_an_rx_binding_is_refused_with_einval()
    {
        using var rxDma = new DmabufRegionScope();
        DmabufBinding rx = DmabufBinding.Create(rxDma.Region, new DmaDevice("rx-dma"));
        try
        {
            var e = Refused(Errno.EINVAL, () => _socket.SendDmabuf((uint)rx.Id, [new DmabufIov(0, 100)]));
            Assert.Contains("rx binding", e.Message, StringComparison.Ordinal);
            Assert.Equal(1, rx.RefCount);
            AssertNothingSent();
        }
        finally
        {
            rx.Put();
        }
    }

    [Fact]
    public void A_send_through_a_binding_of_another_device_is_refused_with_enodev()
    {
        NetDevice other = NewDevice("txdev2", new HeldTxOps());
        try
        {
            using DmabufBindingHandle foreign = other.BindDmabufTx(_region);
            var e = Refused(Errno.ENODEV, () => _socket.SendDmabuf((uint)foreign.BindingId, [new DmabufIov(0, 100)]));
            Assert.Contains("txdev2", e.Message, StringComparison.Ordinal);
            Assert.Equal(1, foreign.Binding.RefCount);
            AssertNothingSent();
        }
        finally
        {
            other.Unregister();
        }
    }

    [Fact]
    public void A_send_after_the_device_unregistered_is_refused_with_enodev()
    {
        _dev.Unregister();
        Refused(Errno.ENODEV, () => _socket.SendDmabuf(Id, [new DmabufIov(0, 100)]));
        AssertNothingSent();
    }

    [Theory]
    [InlineData(RegionSize, 1)]
    [InlineData(RegionSize - 10, 11)]
    [InlineData(ulong.MaxValue - 5, 10)]
    public void A_range_outside_the_region_is_refused_with_efault(ulong offset, uint length)
    {
        var e = Refused(Errno.EFAULT, () => _socket.SendDmabuf(Id, [new DmabufIov(0, 10), new DmabufIov(offset, length)]));
        Assert.Contains("not inside", e.Message, StringComparison.Ordinal);
        AssertNothingSent();
    }

    [Fact]
    public void A_payload_over_max_skb_frags_net_iovs_is_refused_with_emsgsize()
    {
        // 18 ranges of one byte, each in its own net_iov.
        DmabufIov[] iov = [.. Enumerable.Range(0, 18).Select(i => new DmabufIov((ulong)i * 4096, 1))];
        Refused(Errno.EMSGSIZE, () => _socket.SendDmabuf(Id, iov));
        AssertNothingSent();

        Assert.Equal(17, _socket.SendDmabuf(Id, iov.AsSpan(0, 17)));
    }

    [Fact]
    public void A_payload_larger_than_a_udp_datagram_is_refused_with_emsgsize()
    {
        Refused(Errno.EMSGSIZE, () => _socket.SendDmabuf(Id, [new DmabufIov(0, 65508)]));
        AssertNothingSent();
    }

    [Fact]
    public void A_send_from_an_unconnected_socket_is_refused_with_edestaddrreq()
    {
        using var s = new DevmemSocket(FlowKey.Udp(7002)) { ZeroCopy = true };
        Refused(Errno.EDESTADDRREQ, () => s.SendDmabuf(Id, [new DmabufIov(0, 100)]));
        Assert.Equal(0, s.ZeroCopySends);
    }

    [Fact]
    public void A_send_on_a_down_device_is_refused_with_enetdown()
    {
        _dev.Down();
        Refused(Errno.ENETDOWN, () => _socket.SendDmabuf(Id, [new DmabufIov(0, 100)]));
        AssertNothingSent();
    }

    [Fact]
    public void A_full_device_queue_refuses_with_enobufs_and_the_sequence_number_is_not_used()
    {
        _ops.Refuse = Errno.ENOBUFS;
        Assert.Equal(Errno.ENOBUFS, _socket.TrySendDmabuf(Id, [new DmabufIov(0, 100)], out _));
        Refused(Errno.ENOBUFS, () => _socket.SendDmabuf(Id, [new DmabufIov(0, 100)]));
        AssertNothingSent();

        _ops.Refuse = 0;
        _socket.SendDmabuf(Id, [new DmabufIov(0, 100)], DevmemSendFlags.ZeroCopy, out uint seq);
        Assert.Equal(0u, seq);
    }

    [Fact]
    public void An_empty_payload_sends_nothing_and_takes_no_sequence_number()
    {
        Assert.Equal(0, _socket.SendDmabuf(Id, [new DmabufIov(0, 0)]));
        AssertNothingSent();
    }

    [Fact]
    public void Completions_come_in_sequence_order_merged_whatever_order_the_device_finished_in()
    {
        for (int i = 0; i < 10; i++)
        {
            _socket.SendDmabuf(Id, [new DmabufIov((ulong)i * 100, 100)]);
        }

        _ops.Complete(3);
        _ops.Complete(1);
        Assert.Equal(0, _socket.CompletionsPending); // #0 is still in flight
        _ops.Complete(0);

        var got = new ZeroCopyCompletion[4];
        Assert.Equal(1, _socket.ReadCompletions(got));
        Assert.Equal(new ZeroCopyCompletion(0, 1, ZeroCopyCode.ZeroCopy), got[0]);

        _ops.Complete(2);
        _ops.Complete(4, ZeroCopyCode.Copied);
        _ops.Cancel(5);
        for (int i = 9; i >= 6; i--)
        {
            _ops.Complete(i);
        }

        Assert.Equal(4, _socket.ReadCompletions(got));
        Assert.Equal(
            [new(2, 3, ZeroCopyCode.ZeroCopy), new(4, 4, ZeroCopyCode.Copied), new(5, 5, ZeroCopyCode.Cancelled), new(6, 9, ZeroCopyCode.ZeroCopy)],
            got);
        Assert.Equal(10, _socket.ZeroCopySends);
        Assert.Equal(9, _socket.ZeroCopyCompleted);
        Assert.Equal(1, _socket.ZeroCopyCopied);
        Assert.Equal(1, _socket.ZeroCopyCancelled);
        Assert.Equal(0, _socket.SendsInFlight);
        Assert.Equal(1, _tx.Binding.RefCount);
    }

    [Fact]
    public void A_packet_ended_twice_throws_and_changes_nothing()
    {
        _socket.SendDmabuf(Id, [new DmabufIov(0, 100)]);
        DevmemTxPacket p = _ops[0];
        _ops.Complete(0);

        Assert.Throws<InvalidOperationException>(() => p.Complete());
        Assert.Throws<InvalidOperationException>(() => p.Cancel());
        Assert.Equal(1, _socket.ZeroCopyCompleted);
        Assert.Equal(0, _socket.ZeroCopyCancelled);
        Assert.Equal(1, _tx.Binding.RefCount);
    }

    [Fact]
    public void The_window_refuses_with_enobufs_while_sends_are_in_flight_or_their_notifications_cannot_be_queued()
    {
        using var s = new DevmemSocket(FlowKey.Udp(7003), maxTxInFlight: 4) { ZeroCopy = true };
        s.Connect(_dev, new IPEndPoint(IPAddress.Parse("10.9.0.1"), 7003), new IPEndPoint(IPAddress.Parse("10.9.0.2"), 7001));
        for (int i = 0; i < 4; i++)
        {
            s.SendDmabuf(Id, [new DmabufIov(0, 10)]);
        }

        var e = Refused(Errno.ENOBUFS, () => s.SendDmabuf(Id, [new DmabufIov(0, 10)]));
        Assert.Contains("in flight or unreported", e.Message, StringComparison.Ordinal);

        // Alternating codes: four notifications that cannot merge fill the notification ring.
        _ops.Complete(0);
        _ops.Cancel(1);
        _ops.Complete(2);
        _ops.Cancel(3);
        for (int i = 4; i < 8; i++)
        {
            Assert.Equal(0, s.TrySendDmabuf(Id, [new DmabufIov(0, 10)], out _));
            _ops.Complete(i);
        }

        Assert.Equal(Errno.ENOBUFS, s.TrySendDmabuf(Id, [new DmabufIov(0, 10)], out _));
        Assert.Equal(4, s.CompletionsPending);

        var got = new ZeroCopyCompletion[8];
        Assert.Equal(5, s.ReadCompletions(got));
        Assert.Equal(
            [new(0, 0, ZeroCopyCode.ZeroCopy), new(1, 1, ZeroCopyCode.Cancelled), new(2, 2, ZeroCopyCode.ZeroCopy), new(3, 3, ZeroCopyCode.Cancelled), new(4, 7, ZeroCopyCode.ZeroCopy)],
            got[..5]);
        Assert.Equal(0, s.TrySendDmabuf(Id, [new DmabufIov(0, 10)], out uint seq));
        Assert.Equal(8u, seq);
        Assert.Equal(9, s.ZeroCopySends);
    }

    [Fact]
    public void Unbinding_with_sends_in_flight_stops_new_sends_and_the_binding_lingers_until_they_complete()
    {
        for (int i = 0; i < 3; i++)
        {
            _socket.SendDmabuf(Id, [new DmabufIov((ulong)i * 4096, 1000)]);
        }

        DmabufBinding b = _tx.Binding;
        _tx.Dispose();

        Assert.True(b.IsUnbound);
        Assert.False(b.IsFreed);
        Assert.Equal(3, b.RefCount);
        var e = Refused(Errno.EINVAL, () => _socket.SendDmabuf(Id, [new DmabufIov(0, 100)]));
        Assert.Contains("unbound", e.Message, StringComparison.Ordinal);

        _ops.CompleteAllNewestFirst();

        Assert.True(b.IsFreed);
        Assert.Equal(0, b.RefCount);
        Assert.Null(DmabufBinding.FromId(b.Id));
        var got = new ZeroCopyCompletion[2];
        Assert.Equal(1, _socket.ReadCompletions(got));
        Assert.Equal(new ZeroCopyCompletion(0, 2, ZeroCopyCode.ZeroCopy), got[0]);
    }

    [Fact]
    public void Closing_with_sends_in_flight_lets_them_end_and_the_counts_add_up()
    {
        for (int i = 0; i < 5; i++)
        {
            _socket.SendDmabuf(Id, [new DmabufIov(0, 100)]);
        }

        _ops.Complete(0);
        _socket.Dispose();

        Assert.Equal(4, _socket.SendsInFlight);
        Assert.Throws<ObjectDisposedException>(() => _socket.SendDmabuf(Id, [new DmabufIov(0, 100)]));
        Assert.Throws<ObjectDisposedException>(() => _socket.ReadCompletions(new ZeroCopyCompletion[1]));
        _ops.Complete(1);
        _ops.CancelAll();

        Assert.Equal(5, _socket.ZeroCopySends);
        Assert.Equal(2, _socket.ZeroCopyCompleted);
        Assert.Equal(3, _socket.ZeroCopyCancelled);
        Assert.Equal(0, _socket.SendsInFlight);
        Assert.Equal(1, _tx.Binding.RefCount);
    }

    [Fact]
    public void Completions_stay_in_order_under_concurrent_completion_from_several_threads()
    {
        const int Sends = 1000;
        using var s = new DevmemSocket(FlowKey.Udp(7004), maxTxInFlight: 1024) { ZeroCopy = true };
        s.Connect(_dev, new IPEndPoint(IPAddress.Parse("10.9.0.1"), 7004), new IPEndPoint(IPAddress.Parse("10.9.0.2"), 7001));
        for (int i = 0; i < Sends; i++)
        {
            s.SendDmabuf(Id, [new DmabufIov((ulong)(i % 64) * 4096, 64)]);
        }

        DevmemTxPacket[] packets = _ops.TakeOpen();
        Assert.Equal(Sends, packets.Length);
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, t =>
        {
            for (int i = t; i < Sends; i += 4)
            {
                packets[i].Complete();
            }
        });
        uint next = 0;
        var got = new ZeroCopyCompletion[16];
        int n;
        while ((n = s.ReadCompletions(got)) > 0)
        {
            foreach (ZeroCopyCompletion c in got.AsSpan(0, n))
            {
                Assert.Equal(next, c.First);
                next = c.Last + 1;
            }
        }

        Assert.Equal((uint)Sends, next);
        Assert.Equal(Sends, s.ZeroCopyCompleted);
        Assert.Equal(0, s.SendsInFlight);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private (DmabufBinding Binding, WeakReference Handle) BindTxAndDropTheHandle()
    {
        DmabufBindingHandle h = _dev.BindDmabufTx(_region);
        return (h.Binding, new WeakReference(h));
    }

    [Fact]
    public void A_tx_handle_collected_without_dispose_unbinds_and_frees_the_binding()
    {
        long failuresBefore = DmabufBindingHandle.OrphanedReleaseFailures;
        int mappedBefore = _dev.DmaDevice!.SegmentCount;
        (DmabufBinding binding, WeakReference handle) = BindTxAndDropTheHandle();
        Assert.Equal(mappedBefore + 1, _dev.DmaDevice.SegmentCount);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.True(DmabufBindingHandle.WaitForOrphanedReleases(TimeSpan.FromSeconds(20)), "the orphaned unbind did not finish");

        Assert.False(handle.IsAlive);
        Assert.True(binding.IsUnbound);
        Assert.True(binding.IsFreed);
        Assert.Equal(mappedBefore, _dev.DmaDevice.SegmentCount);
        Assert.Equal(Errno.EINVAL, _socket.TrySendDmabuf((uint)binding.Id, [new DmabufIov(0, 10)], out _));
        Assert.Equal(failuresBefore, DmabufBindingHandle.OrphanedReleaseFailures);
    }

    [Fact]
    public void One_region_can_be_bound_for_rx_and_for_tx_at_once_with_the_same_offsets()
    {
        DmabufBinding rx = DmabufBinding.Create(_region, _dev.DmaDevice!);
        try
        {
            Assert.NotEqual(rx.Id, _tx.BindingId);
            Assert.Equal(DmabufDirection.Rx, rx.Direction);
            NetmemRef niov = rx.AllocNetIov();
            ulong offset = niov.RegionOffset;

            _socket.SendDmabuf(Id, [new DmabufIov(offset + 10, 100)]);

            DevmemTxFrag f = _ops[0].GetFrag(0);
            Assert.Equal(offset + 10, f.RegionOffset);
            Assert.NotEqual(niov.DmaAddress + 10, f.DmaAddress); // two mappings, two IOVAs, one memory
            rx.FreeNetIov(niov);
        }
        finally
        {
            rx.Put();
        }
    }

    /// <summary>A second region for rx bindings, disposed with the test.</summary>
    private sealed class DmabufRegionScope : IDisposable
    {
        public DmabufRegion Region { get; } = DmabufRegion.CreateMemfd("rx-test", 16 * 4096);

        public void Dispose() => Region.Dispose();
    }
}
