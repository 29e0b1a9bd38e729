using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Drivers;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>
/// TunNic transmit from a bound region, end to end through the kernel: every datagram a
/// <see cref="DevmemSocket"/> sends is written to the TUN in one <c>writev</c>, received by the
/// namespace's kernel and delivered byte-exact to an ordinary UDP socket, and every send
/// completes in order. Each test runs in a namespace of its own; needs root.
/// </summary>
public sealed class TunNicTxTests(ITestOutputHelper output)
{
    /// <summary>Sizes 1..max with 64 B and 1400 B among them (a quarter each), deterministic per sequence.</summary>
    private static int MixedSize(int seq, int max) => (seq % 4) switch
    {
        0 => 64,
        1 => 1400,
        _ => TunTraffic.SizeOf(seq, max),
    };

    [Fact]
    public void Every_one_of_100000_datagrams_sent_from_a_memfd_region_reaches_a_kernel_socket_byte_exact_and_completes_in_order()
    {
        Requires.NetNamespaces();

        const int Count = 100_000;
        using var rig = new TunTxRig();
        DmabufBinding binding = rig.Handle.Binding;
        TunCounters before = rig.Nic.ReadKernelCounters();

        long bytes = rig.RoundTrip(Count, seq => MixedSize(seq, rig.MaxPayload), TimeSpan.FromMinutes(4));

        output.WriteLine($"tx {rig.Nic.TxStats}, writes {rig.Nic.TxCounters}");
        AssertAllSentAndCompleted(rig, Count, bytes);
        TunCounters after = rig.Nic.ReadKernelCounters();
        Assert.Equal((ulong)Count, after.RxPackets - before.RxPackets); // the kernel took every write as a received packet
        Assert.Equal(0UL, after.RxDropped - before.RxDropped);

        rig.Handle.Dispose();
        Assert.True(binding.IsFreed, $"binding {binding.Id} not freed after unbind, {binding.RefCount} references");
        Assert.Equal(0, binding.RefCount);
        Assert.Null(DmabufBinding.FromId(binding.Id));
    }

    [Fact]
    public void A_device_only_region_is_sent_byte_exact_without_the_cpu_ever_reading_it()
    {
        Requires.NetNamespaces();

        const int Count = 5_000;
        using var rig = new TunTxRig(deviceOnly: true);
        Assert.False(rig.Region.IsCpuMapped);
        Assert.Throws<InvalidOperationException>(() => rig.Region.GetSpan(0, 1));

        long bytes = rig.RoundTrip(Count, seq => MixedSize(seq, rig.MaxPayload), TimeSpan.FromMinutes(2));

        AssertAllSentAndCompleted(rig, Count, bytes);
        Assert.Equal(0, rig.Nic.TxStats.Copied);
    }

    [Fact]
    public void Ipv6_datagrams_carry_the_udp_checksum_the_receiving_kernel_requires_and_arrive_byte_exact()
    {
        Requires.NetNamespaces();

        // Odd sizes and ranges split at odd offsets exercise the checksum across fragment edges.
        const int Count = 5_000;
        using var rig = new TunTxRig(ipv6: true);

        long bytes = rig.RoundTrip(Count, seq => MixedSize(seq, rig.MaxPayload), TimeSpan.FromMinutes(2));

        AssertAllSentAndCompleted(rig, Count, bytes);
    }

    [Fact]
    public void A_send_through_tunnic_with_the_binding_of_another_device_is_refused_with_enodev()
    {
        Requires.NetNamespaces();

        using var rig = new TunTxRig();
        using var other = new TunNic(rig.Namespace, new TunNicOptions { Name = "nmtx%d", Configuration = new TunConfiguration { IPv4Address = null, IPv6Address = null, IPv6LinkLocal = false } });
        using DmabufBindingHandle foreign = other.Device.BindDmabufTx(rig.Region);

        var e = Assert.Throws<NetmemException>(() => rig.Socket.SendDmabuf((uint)foreign.BindingId, [new DmabufIov(0, 100)]));

        Assert.Equal(Errno.ENODEV, e.Errno);
        Assert.Contains(other.Device.Name, e.Message, StringComparison.Ordinal);
        Assert.Equal(0, rig.Socket.ZeroCopySends);
        Assert.Equal(1, foreign.Binding.RefCount);
        Assert.Equal(0, rig.Nic.TxStats.Accepted);
        Assert.Equal(0, other.TxStats.Accepted);
    }

    [Fact]
    public void A_payload_over_the_tun_mtu_is_refused_with_emsgsize_and_one_that_fits_is_sent()
    {
        Requires.NetNamespaces();

        using var rig = new TunTxRig();
        var e = Assert.Throws<NetmemException>(() => rig.Socket.SendDmabuf(rig.Id, [new DmabufIov(0, (uint)rig.MaxPayload + 1)]));
        Assert.Equal(Errno.EMSGSIZE, e.Errno);
        Assert.Equal(0, rig.Socket.ZeroCopySends);

        long bytes = rig.RoundTrip(1, _ => rig.MaxPayload, TimeSpan.FromSeconds(30));

        Assert.Equal(rig.MaxPayload, bytes);
        AssertAllSentAndCompleted(rig, 1, bytes);
    }

    [Fact]
    public void A_write_the_tun_refuses_drops_the_packet_counts_the_errno_and_its_send_completes_cancelled()
    {
        Requires.NetNamespaces();

        using var rig = new TunTxRig();
        using (RtNetlink rtnl = rig.Namespace.OpenRtNetlink())
        {
            rtnl.SetLink(rig.Nic.Tun.Name, up: false); // the kernel refuses writes to a TUN that is down: EIO
        }

        rig.Region.GetSpan(0, 100).Fill(1);
        Assert.Equal(100, rig.Socket.SendDmabuf(rig.Id, [new DmabufIov(0, 100)]));
        Assert.True(SimNicTestKit.TryWaitUntil(() => rig.Nic.TxStats.Cancelled == 1 && rig.Handle.Binding.RefCount == 1), $"the send did not end: tx {rig.Nic.TxStats}");

        var notes = new ZeroCopyCompletion[2];
        Assert.Equal(1, rig.Socket.ReadCompletions(notes));
        Assert.Equal(new ZeroCopyCompletion(0, 0, ZeroCopyCode.Cancelled), notes[0]);
        Assert.Equal(1, rig.Socket.ZeroCopyCancelled);
        Assert.Equal(new TunTxCounters(Writes: 0, WriteErrors: 1, ShortWrites: 0, WouldBlockRetries: 0, WouldBlockDrops: 0, LastErrno: Errno.EIO), rig.Nic.TxCounters);
        TxQueueStats tx = rig.Nic.TxStats;
        Assert.Equal((1L, 0L, 1L, 0L, 0L), (tx.Accepted, tx.Completed, tx.Cancelled, tx.Faults, tx.Pending));
        Assert.Equal(1, rig.Handle.Binding.RefCount); // the packet's reference went back
    }

    /// <summary>
    /// Conservation after a round trip: every send accepted, written whole, completed zero-copy
    /// and reported; none cancelled, queued or in flight; the payload bytes match.
    /// </summary>
    private static void AssertAllSentAndCompleted(TunTxRig rig, int count, long bytes)
    {
        // The queue counts a packet and drops its binding reference just after the socket reports it.
        Assert.True(SimNicTestKit.TryWaitUntil(() => rig.Nic.TxStats.Completed + rig.Nic.TxStats.Cancelled == count && rig.Handle.Binding.RefCount == 1), $"tx {rig.Nic.TxStats}");
        DevmemSocket s = rig.Socket;
        Assert.Equal(count, s.ZeroCopySends);
        Assert.Equal(count, s.ZeroCopyCompleted);
        Assert.Equal(0, s.ZeroCopyCancelled);
        Assert.Equal(0, s.SendsInFlight);
        Assert.Equal(0, s.CompletionsPending);
        Assert.Equal(bytes, s.TxBytes);

        TxQueueStats tx = rig.Nic.TxStats;
        Assert.Equal(new TxQueueStats(Accepted: count, Completed: count, Copied: 0, Cancelled: 0, Bytes: bytes, Faults: 0, Queued: 0, Pending: 0), tx);
        Assert.Equal(new TunTxCounters(Writes: count, WriteErrors: 0, ShortWrites: 0, WouldBlockRetries: 0, WouldBlockDrops: 0, LastErrno: 0), rig.Nic.TxCounters);
        Assert.Equal(1, rig.Handle.Binding.RefCount); // only the handle's: no packet holds one
    }
}
