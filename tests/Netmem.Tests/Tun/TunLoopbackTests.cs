using System.Net;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>
/// Real kernel packets through a TUN device in a private network namespace. Needs root; without
/// it each test writes why it did not run and returns (xunit 2 has no runtime skip).
/// </summary>
public sealed class TunLoopbackTests(ITestOutputHelper output)
{
    private const ushort V4Port = 9000;
    private const ushort V6Port = 9006;

    /// <summary>1 B to 1400 B, both ends included, spread by a multiplicative step.</summary>
    private static int SizeOf(int seq) => seq % 10 == 0 ? 1 : seq % 10 == 1 ? 1400 : 1 + (seq * 577 % 1400);


    [Fact]
    public void Udp_sent_in_the_namespace_is_read_from_every_queue_byte_for_byte_and_matches_tx_packets()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var tun = TunDevice.Create(ns, queueCount: 2);
        TunCounters before = tun.ReadCounters();
        tun.Configure();
        using var v4 = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv4, V4Port), maxDatagrams: 1000);
        using var v6 = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv6, V6Port), maxDatagrams: 200);
        var rx = new TunReceiver(tun, SizeOf);
        rx.ExpectFlow(V4Port, (ushort)v4.LocalEndPoint.Port, L3Kind.IPv4);
        rx.ExpectFlow(V6Port, (ushort)v6.LocalEndPoint.Port, L3Kind.IPv6);

        // Bursts well under the queue ring (txqueuelen 1000), read in between: nothing may drop.
        const int Burst = 50;
        for (int seq = 0; seq < 1000; seq += Burst)
        {
            v4.SendPattern(seq, Burst, SizeOf);
            int target = seq + Burst;
            Assert.True(rx.ReadUntil(() => rx.Received(V4Port) >= target), $"IPv4 stalled at {rx.Received(V4Port)} of {target}");
        }

        for (int seq = 0; seq < 200; seq += Burst)
        {
            v6.SendPattern(seq, Burst, SizeOf);
            int target = seq + Burst;
            Assert.True(rx.ReadUntil(() => rx.Received(V6Port) >= target), $"IPv6 stalled at {rx.Received(V6Port)} of {target}");
        }

        rx.DrainUntilQuiet(100);
        TunCounters delta = tun.ReadCounters().Since(before);

        output.WriteLine($"{ns.Name}/{tun.Name}: read {rx.PacketsRead} packets, {rx.BytesRead} B; per queue [{string.Join(", ", rx.PerQueue)}]; kernel {delta}");
        foreach ((string what, int n) in rx.Other)
        {
            output.WriteLine($"  other: {n} x {what}");
        }

        Assert.Empty(rx.Failures);
        Assert.Equal(1000, rx.Received(V4Port));
        Assert.Equal(200, rx.Received(V6Port));
        Assert.All(rx.Other.Keys, k => Assert.DoesNotContain("None", k, StringComparison.Ordinal));
        Assert.Equal(1200 + rx.Other.Values.Sum(), rx.PacketsRead);
        Assert.Equal((ulong)rx.PacketsRead, delta.TxPackets);
        Assert.Equal((ulong)rx.BytesRead, delta.TxBytes);
        Assert.Equal(0UL, delta.TxDropped);
        Assert.Equal(0UL, delta.RxPackets);
        Assert.Equal(tun.ReadCounters(), tun.ReadCountersFromNetlink());
    }

    [Fact]
    public void Tx_packets_counts_a_packet_when_it_is_read_not_when_the_kernel_queues_it()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var tun = TunDevice.Create(ns);
        tun.Configure(new TunConfiguration { IPv6Address = null, IPv6LinkLocal = false });
        using var sender = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv4, V4Port), maxDatagrams: 3);
        TunCounters before = tun.ReadCounters();

        sender.Send(new byte[100]);
        sender.Send(new byte[200]);
        Assert.True(tun.WaitAnyReadable(1000) >= 0);
        Assert.Equal(0UL, tun.ReadCounters().Since(before).TxPackets);

        byte[] buffer = new byte[2048];
        Assert.Equal(128, tun.Read(0, buffer));
        TunCounters afterOne = tun.ReadCounters().Since(before);
        Assert.Equal(1UL, afterOne.TxPackets);
        Assert.Equal(128UL, afterOne.TxBytes);

        Assert.Equal(228, tun.Read(0, buffer));
        Assert.Equal(-1, tun.Read(0, buffer));
        Assert.Equal(2UL, tun.ReadCounters().Since(before).TxPackets);
    }

    [Fact]
    public void A_device_without_ipv6_link_local_sends_nothing_of_its_own()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var tun = TunDevice.Create(ns);
        tun.Configure(new TunConfiguration { IPv6Address = null, IPv6LinkLocal = false });
        Assert.Equal(-1, tun.WaitAnyReadable(300));
        Assert.Equal(0UL, tun.ReadCounters().TxPackets);
    }

    [Fact]
    public void Read_into_a_short_buffer_copies_what_fits_and_discards_the_rest_of_the_packet()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var tun = TunDevice.Create(ns);
        tun.Configure(new TunConfiguration { IPv6Address = null, IPv6LinkLocal = false });
        using var sender = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv4, V4Port), maxDatagrams: 2);
        sender.Send(new byte[1000]);
        sender.Send(new byte[10]);
        Assert.True(tun.WaitAnyReadable(1000) >= 0);

        byte[] small = new byte[100];
        Assert.Equal(100, tun.Read(0, small));
        Assert.Equal(IpDropReason.BadLength, IpPacketParser.Parse(small, out IpPacketInfo info));
        Assert.Equal(L3Kind.IPv4, info.L3);

        // The next read is the next packet: the first one's remainder is gone.
        byte[] next = new byte[2048];
        Assert.Equal(38, tun.Read(0, next));
        Assert.Equal(1028UL + 38UL, tun.ReadCounters().TxBytes);
    }

    [Fact]
    public void ReadScatter_puts_ip_and_udp_headers_in_one_buffer_and_the_payload_in_another()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var tun = TunDevice.Create(ns);
        tun.Configure(new TunConfiguration { IPv6LinkLocal = false });
        using var sender = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv4, V4Port), maxDatagrams: 1);
        byte[] payload = new byte[777];
        NamespaceUdpSender.FillPattern(42, payload);
        sender.Send(payload);

        byte[] header = new byte[28];
        byte[] data = new byte[1500];
        int n = -1;
        while (n < 0 && tun.WaitAnyReadable(1000) >= 0)
        {
            n = TunFile.ReadScatter(tun.GetFd(0), header, data);
            if (n > 0 && (header[0] >> 4) != 4)
            {
                n = -1; // kernel's own IPv6 traffic (MLD); not this test's datagram
            }
        }

        Assert.Equal(28 + 777, n);
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse([.. header, .. data.AsSpan(0, n - 28)], out IpPacketInfo info));
        Assert.Equal(28, info.HeaderLength);
        Assert.Equal(V4Port, info.DestinationPort);
        Assert.Equal(-1, NamespaceUdpSender.FindPatternMismatch(42, data.AsSpan(0, 777)));
    }

    [Fact]
    public void Written_packets_are_received_by_the_kernel_and_counted_in_rx()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var tun = TunDevice.Create(ns);
        tun.Configure(new TunConfiguration { IPv6Address = null, IPv6LinkLocal = false });
        TunCounters before = tun.ReadCounters();

        // 198.18.0.2 -> 198.18.0.1 (the device's own address) UDP to a closed port: the kernel
        // receives it and answers ICMP port unreachable back through the TUN.
        byte[] udp = PacketBuilder.Udp(40000, 9999, PacketBuilder.Payload(20));
        byte[] packet = PacketBuilder.IPv4(17, udp);
        PacketBuilder.V4Dst.TryWriteBytes(packet.AsSpan(12), out _);
        PacketBuilder.V4Src.TryWriteBytes(packet.AsSpan(16), out _);
        WriteIPv4HeaderChecksum(packet);
        Assert.Equal(packet.Length, tun.Write(0, packet));

        Assert.True(tun.WaitAnyReadable(1000) >= 0);
        byte[] reply = new byte[2048];
        int n = tun.Read(0, reply);
        Assert.Equal(IpDropReason.UnsupportedProtocol, IpPacketParser.Parse(reply.AsSpan(0, n), out IpPacketInfo info));
        Assert.Equal(IpPacketParser.ProtocolIcmp, info.Protocol);
        Assert.Equal(PacketBuilder.V4Dst, info.GetDestinationIPAddress());
        Assert.Equal(3, reply[info.L4Offset]); // destination unreachable
        TunCounters delta = tun.ReadCounters().Since(before);
        Assert.Equal(1UL, delta.RxPackets);
        Assert.Equal((ulong)packet.Length, delta.RxBytes);
        Assert.Equal(1UL, delta.TxPackets);
    }

    private static void WriteIPv4HeaderChecksum(byte[] p)
    {
        int ihl = (p[0] & 0xF) * 4;
        p[10] = 0;
        p[11] = 0;
        uint sum = 0;
        for (int i = 0; i < ihl; i += 2)
        {
            sum += (uint)((p[i] << 8) | p[i + 1]);
        }

        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        ushort c = (ushort)~sum;
        p[10] = (byte)(c >> 8);
        p[11] = (byte)c;
    }
}
