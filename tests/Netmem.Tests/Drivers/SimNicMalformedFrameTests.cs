using System.Buffers.Binary;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Drivers;

/// <summary>Malformed frames are dropped and counted under their reason, and take no memory with them.</summary>
public sealed class SimNicMalformedFrameTests : IDisposable
{
    private const ushort Port = 7300;
    private readonly PageArena _arena = new(16 << 20);
    private readonly DmabufRegion _region = DmabufRegion.CreateMemfd("malformed", 2 << 20);
    private readonly SimNic _nic;
    private readonly DmabufBindingHandle _handle;
    private readonly DevmemSocket _socket;
    private readonly PoolTracker _pools = new();

    public SimNicMalformedFrameTests()
    {
        _nic = new SimNic("malformed", new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, Arena = _arena });
        _handle = _nic.Device.BindDmabuf(_region, [0]);
        _pools.Capture(_nic);
        _socket = _nic.OpenSocket(FlowKey.Udp(Port));
    }

    public void Dispose()
    {
        _handle.Dispose();
        _pools.Capture(_nic);
        _nic.Dispose();
        _pools.AssertAllReturned();
        Assert.True(_handle.Binding.IsFreed);
        Assert.Equal(_handle.Binding.Size, _handle.Binding.Avail);
        Assert.Equal(_arena.TotalPages(0), _arena.FreePages(0));
        _region.Dispose();
        _arena.Dispose();
    }

    private RxCounters Counters => _nic.QueueCounters(0);

    /// <summary>A well-formed UDP frame to <see cref="Port"/>, returned as an array to patch.</summary>
    private static byte[] Good(bool ipv6 = false, int payload = 100, ushort vlan = 0, ushort port = Port)
    {
        byte[] f = new byte[2048];
        int len = UdpFrame(f, 1, payload, port, ipv6, vlan);
        return f.AsSpan(0, len).ToArray();
    }

    private void InjectAndSettle(params byte[][] frames)
    {
        foreach (byte[] f in frames)
        {
            InjectBounded(_nic, 0, f);
        }

        WaitIdle(_nic);
    }

    private void AssertOnlyDrop(DropReason reason, long count) => AssertDrops(new() { [reason] = count });

    private void AssertDrops(Dictionary<DropReason, long> expected)
    {
        foreach ((DropReason reason, long count) in expected)
        {
            Assert.Equal(count, Counters.DropsFor(reason));
        }

        Assert.Equal(expected, Counters.DropsByReason());
        Assert.Equal(0, Counters.Packets);
        Assert.Equal(0, _socket.QueuedFragments);
    }

    [Fact]
    public void Truncated_headers_are_dropped_as_Truncated()
    {
        byte[] good = Good();
        InjectAndSettle(
            good.AsSpan(0, 10).ToArray(),                  // inside the Ethernet header
            good.AsSpan(0, 14 + 12).ToArray(),             // inside the IPv4 header
            Good(ipv6: true).AsSpan(0, 14 + 30).ToArray(), // inside the IPv6 header
            [.. good.AsSpan(0, 12), 0x81, 0x00, 0x00]);    // inside the VLAN tag
        AssertOnlyDrop(DropReason.Truncated, 4);
    }

    [Fact]
    public void Wrong_ip_lengths_are_dropped_as_BadLength_or_BadHeaderLength()
    {
        byte[] v4Long = Good();
        BinaryPrimitives.WriteUInt16BigEndian(v4Long.AsSpan(14 + 2), (ushort)(v4Long.Length + 50)); // total length past the frame
        byte[] v4Short = Good();
        BinaryPrimitives.WriteUInt16BigEndian(v4Short.AsSpan(14 + 2), 10); // shorter than its own header
        byte[] v4Ihl = Good();
        v4Ihl[14] = 0x44; // IHL 16 bytes < 20
        byte[] v6Long = Good(ipv6: true);
        BinaryPrimitives.WriteUInt16BigEndian(v6Long.AsSpan(14 + 4), 4000);
        InjectAndSettle(v4Long, v4Short, v4Ihl, v6Long);
        AssertDrops(new() { [DropReason.BadLength] = 3, [DropReason.BadHeaderLength] = 1 });
    }

    [Fact]
    public void Unknown_ethertype_is_dropped_as_UnknownEthertype()
    {
        byte[] arp = Good();
        BinaryPrimitives.WriteUInt16BigEndian(arp.AsSpan(12), 0x0806);
        byte[] vlanArp = Good(vlan: 5);
        BinaryPrimitives.WriteUInt16BigEndian(vlanArp.AsSpan(16), 0x0806);
        InjectAndSettle(arp, vlanArp);
        AssertOnlyDrop(DropReason.UnknownEtherType, 2);
    }

    [Fact]
    public void Ipv4_and_ipv6_fragments_are_dropped_as_Fragment()
    {
        byte[] moreFragments = Good();
        BinaryPrimitives.WriteUInt16BigEndian(moreFragments.AsSpan(14 + 6), 0x2000);
        byte[] lastFragment = Good();
        BinaryPrimitives.WriteUInt16BigEndian(lastFragment.AsSpan(14 + 6), 0x0010); // offset 128 bytes, no MF
        byte[] v6Fragment = Good(ipv6: true);
        v6Fragment[14 + 6] = 44; // next header: fragment
        InjectAndSettle(moreFragments, lastFragment, v6Fragment);
        AssertOnlyDrop(DropReason.Fragment, 3);
    }

    [Fact]
    public void Zero_length_payload_is_dropped_as_ZeroPayload()
    {
        InjectAndSettle(Good(payload: 0), Good(ipv6: true, payload: 0));
        AssertOnlyDrop(DropReason.ZeroPayload, 2);
    }

    [Fact]
    public void Inconsistent_udp_length_and_bad_tcp_data_offset_are_dropped_by_their_reasons()
    {
        byte[] udpLong = Good();
        BinaryPrimitives.WriteUInt16BigEndian(udpLong.AsSpan(14 + 20 + 4), 500); // past the IP packet
        byte[] udpShort = Good();
        BinaryPrimitives.WriteUInt16BigEndian(udpShort.AsSpan(14 + 20 + 4), 4); // less than its header
        byte[] tcpSmallOffset = Good();
        tcpSmallOffset[14 + 9] = 6;                 // TCP
        tcpSmallOffset[14 + 20 + 12] = 3 << 4;      // data offset 12 bytes < 20
        byte[] tcpPastEnd = Good(payload: 30);
        tcpPastEnd[14 + 9] = 6;
        tcpPastEnd[14 + 20 + 12] = 15 << 4;         // 60-byte TCP header in a 38-byte segment
        InjectAndSettle(udpLong, udpShort, tcpSmallOffset, tcpPastEnd);
        AssertDrops(new() { [DropReason.BadL4Length] = 2, [DropReason.BadL4HeaderLength] = 1, [DropReason.Truncated] = 1 });
    }

    [Fact]
    public void Icmp_is_dropped_as_UnsupportedProtocol()
    {
        byte[] icmp = Good();
        icmp[14 + 9] = 1;
        byte[] icmp6 = Good(ipv6: true);
        icmp6[14 + 6] = 58;
        InjectAndSettle(icmp, icmp6);
        AssertOnlyDrop(DropReason.UnsupportedProtocol, 2);
    }

    [Fact]
    public void A_frame_to_a_port_without_socket_is_dropped_as_NoSocket()
    {
        InjectAndSettle(Good(port: 9999), Good(ipv6: true, port: 1));
        AssertOnlyDrop(DropReason.NoSocket, 2);
    }

    [Fact]
    public void Vlan_tagged_frames_are_delivered_with_their_payload()
    {
        InjectAndSettle(Good(vlan: 100, payload: 333), Good(ipv6: true, vlan: 4094, payload: 1500));
        Assert.Equal(2, Counters.Packets);
        Assert.Equal(333 + 1500, Counters.Bytes);
        Assert.Equal(0, Counters.Drops);
        Assert.Equal(2, Drain(_socket, _region));
    }

    [Fact]
    public void A_mix_of_bad_and_good_frames_counts_each_once_and_delivers_only_the_good()
    {
        byte[] frag = Good();
        BinaryPrimitives.WriteUInt16BigEndian(frag.AsSpan(14 + 6), 0x2000);
        InjectAndSettle(Good(), Good(payload: 0), frag, Good(port: 1), Good(ipv6: true), Good().AsSpan(0, 20).ToArray());
        Assert.Equal(2, Counters.Packets);
        Assert.Equal(4, Counters.Drops);
        Assert.Equal(1, Counters.DropsFor(DropReason.ZeroPayload));
        Assert.Equal(1, Counters.DropsFor(DropReason.Fragment));
        Assert.Equal(1, Counters.DropsFor(DropReason.NoSocket));
        Assert.Equal(1, Counters.DropsFor(DropReason.Truncated));
        Assert.Equal(2, Drain(_socket, _region));
    }
}
