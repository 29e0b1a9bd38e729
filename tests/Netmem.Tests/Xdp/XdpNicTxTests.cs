using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Xdp;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>
/// XdpNic transmit from the UMEM: datagrams a <see cref="DevmemSocket"/> sends from the region
/// bound for rx on queue 0 (and for tx) leave through the queue's AF_XDP tx ring and arrive at an
/// ordinary kernel UDP socket in the veth peer's namespace; each send ends when its descriptors
/// come back on the completion ring. Needs root.
/// </summary>
public sealed class XdpNicTxTests(ITestOutputHelper output)
{
    /// <summary>64 B, 1400 B and other sizes up to the MTU's payload, a third each, deterministic per sequence.</summary>
    private static int MixedSize(int seq) => (seq % 3) switch
    {
        0 => 64,
        1 => 1400,
        _ => XdpTestKit.SizeOf(seq, XdpTxRig.MaxPayload),
    };

    /// <summary>As <see cref="MixedSize"/>, up to the IPv6 payload limit, odd sizes included (the checksum pads the last byte).</summary>
    private static int Ipv6MixedSize(int seq) => (seq % 3) switch
    {
        0 => 63,
        1 => XdpTxRig.MaxPayloadIPv6,
        _ => XdpTestKit.SizeOf(seq, XdpTxRig.MaxPayloadIPv6),
    };

    [Fact]
    public void Mixed_64_and_1400_byte_datagrams_sent_from_the_umem_reach_a_peer_kernel_socket_byte_exact_and_complete_in_order()
    {
        Requires.AfXdp();

        const int Count = 4000;
        using var rig = new XdpTxRig();
        Assert.True(XdpTestKit.WaitUntil(() => rig.Nic.QueueTxMultiBuffer(0) is not null), "queue 0 published no tx port");
        bool sg = rig.Nic.QueueTxMultiBuffer(0)!.Value;
        ZeroCopyCode code = sg ? ZeroCopyCode.ZeroCopy : ZeroCopyCode.Copied;
        output.WriteLine($"{rig.Nic}: {rig.Nic.QueueMode(0)}, multi-buffer {sg}, completions reported as {code}");

        long bytes = rig.RoundTrip(Count, MixedSize, code, TimeSpan.FromMinutes(3));

        output.WriteLine($"tx {rig.Nic.TxStats}, {rig.Nic.TxCounters}, xsk {rig.Nic.ReadXskStatistics(0)}");
        AssertAllSentAndCompleted(rig, Count, bytes, copied: !sg);
        AssertTornDown(rig);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Without_multi_buffer_each_send_is_copied_into_a_reserved_frame_completes_as_copied_and_counts_its_copied_bytes(bool ipv6)
    {
        Requires.AfXdp();

        const int Count = 1000;
        using var rig = new XdpTxRig(optionsFor: v => new XdpNicOptions { TxMultiBuffer = false, TxDestinationMac = v.PeerMacAddress.ToArray() }, ipv6: ipv6);
        Assert.True(XdpTestKit.WaitUntil(() => rig.Nic.QueueTxMultiBuffer(0) is not null), "queue 0 published no tx port");
        Assert.False(rig.Nic.QueueTxMultiBuffer(0));

        long bytes = rig.RoundTrip(Count, ipv6 ? Ipv6MixedSize : MixedSize, ZeroCopyCode.Copied, TimeSpan.FromMinutes(2));

        AssertAllSentAndCompleted(rig, Count, bytes, copied: true);
        AssertTornDown(rig);
    }

    [Fact]
    public void Ipv6_datagrams_sent_from_the_umem_carry_the_udp_checksum_and_reach_a_peer_kernel_ipv6_socket_byte_exact()
    {
        Requires.AfXdp();

        // The kernel drops an IPv6 UDP datagram whose checksum is 0 or wrong: each one arriving
        // proves the driver computed it over the payload where it lies, whole and split in two.
        const int Count = 3000;
        using var rig = new XdpTxRig(ipv6: true);
        Assert.True(XdpTestKit.WaitUntil(() => rig.Nic.QueueTxMultiBuffer(0) is not null), "queue 0 published no tx port");
        bool sg = rig.Nic.QueueTxMultiBuffer(0)!.Value;
        ZeroCopyCode code = sg ? ZeroCopyCode.ZeroCopy : ZeroCopyCode.Copied;

        long bytes = rig.RoundTrip(Count, Ipv6MixedSize, code, TimeSpan.FromMinutes(3));

        output.WriteLine($"multi-buffer {sg}; tx {rig.Nic.TxStats}, {rig.Nic.TxCounters}");
        AssertAllSentAndCompleted(rig, Count, bytes, copied: !sg);
        AssertTornDown(rig);
    }

    [Fact]
    public void Frames_to_the_broadcast_mac_the_driver_uses_without_a_next_hop_are_taken_by_the_peer_kernel()
    {
        Requires.AfXdp();

        const int Count = 300;
        using var rig = new XdpTxRig(new XdpNicOptions());
        Assert.True(XdpTestKit.WaitUntil(() => rig.Nic.QueueTxMultiBuffer(0) is not null), "queue 0 published no tx port");
        ZeroCopyCode code = rig.Nic.QueueTxMultiBuffer(0)!.Value ? ZeroCopyCode.ZeroCopy : ZeroCopyCode.Copied;

        long bytes = rig.RoundTrip(Count, MixedSize, code, TimeSpan.FromMinutes(1));

        AssertAllSentAndCompleted(rig, Count, bytes, copied: code == ZeroCopyCode.Copied);
    }

    [Fact]
    public void A_send_from_a_region_that_is_not_a_running_queues_umem_is_cancelled_and_counted_as_not_umem()
    {
        Requires.AfXdp();

        using var rig = new XdpTxRig();
        using DmabufRegion other = DmabufRegion.CreateMemfd("xdp-tx-other", 1 << 20);
        using DmabufBindingHandle foreign = rig.Nic.Device.BindDmabufTx(other);
        other.GetSpan(0, 100).Fill(7);

        Assert.Equal(100, rig.Socket.SendDmabuf((uint)foreign.BindingId, [new DmabufIov(0, 100)]));

        Assert.True(XdpTestKit.WaitUntil(() => rig.Nic.TxStats.Cancelled == 1 && foreign.Binding.RefCount == 1), $"the send did not end: tx {rig.Nic.TxStats}");
        var notes = new ZeroCopyCompletion[2];
        Assert.Equal(1, rig.Socket.ReadCompletions(notes));
        Assert.Equal(new ZeroCopyCompletion(0, 0, ZeroCopyCode.Cancelled), notes[0]);
        Assert.Equal(1, rig.Nic.TxCounters.NotUmemDrops);
        TxQueueStats tx = rig.Nic.TxStats;
        Assert.Equal((1L, 0L, 1L, 0L, 0L), (tx.Accepted, tx.Completed, tx.Cancelled, tx.Faults, tx.Pending));
        Assert.Equal(0L, rig.Nic.TxCounters.Kicks); // no descriptor was ever posted
        Assert.Equal(0, rig.Receiver.Available);
    }

    [Fact]
    public void After_the_rx_binding_is_released_the_queue_holds_no_tx_chunks_and_a_send_is_cancelled_as_not_umem()
    {
        Requires.AfXdp();

        using var rig = new XdpTxRig();
        Assert.True(XdpTestKit.WaitUntil(() => rig.Nic.QueueTxMultiBuffer(0) is not null), "queue 0 published no tx port");
        rig.RoundTrip(10, MixedSize, rig.Nic.QueueTxMultiBuffer(0)!.Value ? ZeroCopyCode.ZeroCopy : ZeroCopyCode.Copied, TimeSpan.FromMinutes(1));
        DmabufBinding rx = rig.Bound.Binding;

        rig.Bound.Handle.Dispose(); // the queue restarts on the driver's own UMEM

        Assert.True(XdpTestKit.WaitUntil(() => rx.IsFreed), $"rx binding not freed: {rx.OutstandingNetIovs} net_iovs out");
        Assert.Equal(rx.Size, rx.Avail); // the header chunks went back with the rest
        Assert.Null(rig.Nic.QueueTxMultiBuffer(0));
        Assert.Equal(100, rig.Socket.SendDmabuf(rig.Id, [new DmabufIov(0, 100)]));
        Assert.True(XdpTestKit.WaitUntil(() => rig.Nic.TxStats.Cancelled == 1), $"the send did not end: tx {rig.Nic.TxStats}");
        Assert.Equal(1, rig.Nic.TxCounters.NotUmemDrops);
        Assert.Equal(10, rig.Nic.TxStats.Completed);
    }

    /// <summary>
    /// Every send accepted, completed (copied or not as <paramref name="copied"/> says) and
    /// reported; none cancelled, queued or in flight; no drop or stray completion; the kernel saw
    /// no invalid descriptor.
    /// </summary>
    private static void AssertAllSentAndCompleted(XdpTxRig rig, int count, long bytes, bool copied)
    {
        Assert.True(XdpTestKit.WaitUntil(() => rig.Nic.TxStats.Completed + rig.Nic.TxStats.Cancelled == count && rig.TxHandle.Binding.RefCount == 1), $"tx {rig.Nic.TxStats}");
        TxQueueStats tx = rig.Nic.TxStats;
        Assert.Equal(new TxQueueStats(count, count, copied ? count : 0, 0, bytes, 0, 0, 0), tx);
        Assert.Equal(count, rig.Socket.ZeroCopySends);
        Assert.Equal(count, rig.Socket.ZeroCopyCompleted);
        Assert.Equal(copied ? count : 0, rig.Socket.ZeroCopyCopied);
        Assert.Equal(0, rig.Socket.SendsInFlight);
        Assert.Equal(0, rig.Nic.TxPortOf(0)!.InFlight);
        XdpTxCounters c = rig.Nic.TxCounters;
        Assert.Equal((0L, 0L, 0L, 0L, 0L, 0L), (c.NotUmemDrops, c.OversizeDrops, c.NoRoomDrops, c.StrayCompletions, c.KickErrors, c.DrainCancels));
        Assert.Equal(copied ? bytes : 0, c.CopiedBytes); // the copy fallback's bytes, and only those
        Assert.Equal(0UL, rig.Nic.ReadXskStatistics(0).TxInvalidDescs);
    }

    /// <summary>Unbinding frees the TX binding; tearing the driver down gives back every chunk, the header chunks included.</summary>
    private static void AssertTornDown(XdpTxRig rig)
    {
        DmabufBinding tx = rig.TxHandle.Binding;
        Assert.True(rig.Nic.QueueTxChunksHeld(0) > 0);
        rig.TxHandle.Dispose();
        Assert.True(tx.IsFreed, $"tx binding {tx.Id} not freed after unbind, {tx.RefCount} references");
        Assert.Null(DmabufBinding.FromId(tx.Id));
        rig.Bound.TearDownAndAssertNothingLeft();
        Assert.Equal(0, rig.Nic.TxCounters.DrainCancels);
    }
}
