using System.Buffers.Binary;
using System.Net;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Xunit;
using static Netmem.Tests.Tun.PacketBuilder;

namespace Netmem.Tests.Tun;

public sealed class IpPacketParserTests
{
    [Fact]
    public void IPv4_udp_gives_addresses_ports_and_payload_bounds()
    {
        byte[] p = IPv4(17, Udp(40000, 9000, Payload(100)));
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(L3Kind.IPv4, info.L3);
        Assert.Equal(L4Kind.Udp, info.L4);
        Assert.Equal(17, info.Protocol);
        Assert.Equal(0, info.L3Offset);
        Assert.Equal(128, info.L3Length);
        Assert.Equal(20, info.L4Offset);
        Assert.Equal(28, info.HeaderLength);
        Assert.Equal(28, info.PayloadOffset);
        Assert.Equal(100, info.PayloadLength);
        Assert.Equal(40000, info.SourcePort);
        Assert.Equal(9000, info.DestinationPort);
        Assert.Equal(V4Src, info.GetSourceIPAddress());
        Assert.Equal(V4Dst, info.GetDestinationIPAddress());
        Assert.Equal(0xC6120001u, info.SourceIPv4);
        Assert.Equal(0xC6120002u, info.DestinationIPv4);
        Assert.Equal(Payload(100), p.AsSpan(info.PayloadOffset, info.PayloadLength).ToArray());
    }

    [Fact]
    public void IPv4_options_move_the_l4_header()
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(5)), optionBytes: 12);
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(32, info.L4Offset);
        Assert.Equal(40, info.PayloadOffset);
        Assert.Equal(5, info.PayloadLength);
    }

    [Fact]
    public void IPv4_max_options_ihl_15_parses()
    {
        byte[] p = IPv4(6, Tcp(80, 5000, Payload(3)), optionBytes: 40);
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(60, info.L4Offset);
        Assert.Equal(80, info.PayloadOffset);
    }

    [Fact]
    public void Udp_with_empty_payload_parses_with_zero_length_at_the_end()
    {
        byte[] p = IPv4(17, Udp(1, 2, []));
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(28, info.PayloadOffset);
        Assert.Equal(0, info.PayloadLength);
        Assert.Equal(p.Length, info.HeaderLength);
    }

    [Fact]
    public void Tcp_with_options_uses_the_data_offset()
    {
        byte[] p = IPv4(6, Tcp(443, 50000, Payload(17), optionBytes: 12, flags: 0x12));
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(L4Kind.Tcp, info.L4);
        Assert.Equal(443, info.SourcePort);
        Assert.Equal(50000, info.DestinationPort);
        Assert.Equal(0x12, info.TcpFlags);
        Assert.Equal(20 + 32, info.PayloadOffset);
        Assert.Equal(17, info.PayloadLength);
    }

    [Fact]
    public void Tcp_data_offset_below_five_is_a_bad_l4_header_length()
    {
        byte[] p = IPv4(6, Tcp(1, 2, Payload(4), dataOffsetWords: 4));
        Assert.Equal(IpDropReason.BadL4HeaderLength, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void Tcp_data_offset_past_the_packet_is_truncated()
    {
        byte[] p = IPv4(6, Tcp(1, 2, [], dataOffsetWords: 8));
        Assert.Equal(IpDropReason.Truncated, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void Empty_buffer_is_truncated()
    {
        Assert.Equal(IpDropReason.Truncated, IpPacketParser.Parse([], out IpPacketInfo info));
        Assert.Equal(IpDropReason.Truncated, info.DropReason);
        Assert.False(info.IsOk);
    }

    [Theory]
    [InlineData(0x00)]
    [InlineData(0x55)]
    [InlineData(0xF0)]
    public void Version_other_than_4_or_6_is_bad_version(byte first)
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(4)));
        p[0] = first;
        Assert.Equal(IpDropReason.BadVersion, IpPacketParser.Parse(p, out _));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(19)]
    public void IPv4_shorter_than_its_fixed_header_is_truncated(int length)
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(4)));
        Assert.Equal(IpDropReason.Truncated, IpPacketParser.Parse(p.AsSpan(0, length), out _));
    }

    [Fact]
    public void IPv4_options_past_the_buffer_are_truncated()
    {
        byte[] p = IPv4(17, [], optionBytes: 20, totalLengthField: 40);
        Assert.Equal(IpDropReason.Truncated, IpPacketParser.Parse(p.AsSpan(0, 30), out _));
    }

    [Fact]
    public void IPv4_ihl_below_five_is_bad_header_length()
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(4)), ihlWords: 4);
        Assert.Equal(IpDropReason.BadHeaderLength, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void IPv4_total_length_beyond_the_buffer_is_bad_length()
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(10)));
        // What a read into a too-short buffer looks like: the rest of the packet is missing.
        Assert.Equal(IpDropReason.BadLength, IpPacketParser.Parse(p.AsSpan(0, p.Length - 1), out IpPacketInfo info));
        Assert.Equal(L3Kind.IPv4, info.L3);
    }

    [Fact]
    public void IPv4_total_length_below_the_header_is_bad_length()
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(10)), totalLengthField: 19);
        Assert.Equal(IpDropReason.BadLength, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void IPv4_trailing_bytes_after_total_length_are_ignored()
    {
        byte[] inner = IPv4(17, Udp(1, 2, Payload(10)));
        byte[] padded = [.. inner, 0xEE, 0xEE, 0xEE];
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(padded, out IpPacketInfo info));
        Assert.Equal(inner.Length, info.L3Length);
        Assert.Equal(10, info.PayloadLength);
    }

    [Fact]
    public void Udp_length_below_eight_is_bad_l4_length()
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(10), lengthField: 7));
        Assert.Equal(IpDropReason.BadL4Length, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void Udp_length_past_the_ip_payload_is_bad_l4_length()
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(10), lengthField: 19));
        Assert.Equal(IpDropReason.BadL4Length, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void Udp_length_shorter_than_the_ip_payload_trims_the_payload()
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(10), lengthField: 12));
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(4, info.PayloadLength);
    }

    [Fact]
    public void Udp_header_cut_by_the_ip_length_is_truncated()
    {
        byte[] p = IPv4(17, Udp(1, 2, []).AsSpan(0, 6));
        Assert.Equal(IpDropReason.Truncated, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(L4Kind.Udp, info.L4);
    }

    [Theory]
    [InlineData((ushort)0x2000, 0, true)]      // first fragment: MF
    [InlineData((ushort)0x0010, 128, false)]   // last fragment: offset only
    [InlineData((ushort)0x2001, 8, true)]      // middle fragment
    public void IPv4_fragments_are_dropped_with_their_offset(ushort fragmentField, int offset, bool more)
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(16)), fragment: fragmentField);
        Assert.Equal(IpDropReason.Fragment, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(offset, info.FragmentOffset);
        Assert.Equal(more, info.MoreFragments);
        Assert.Equal(V4Dst, info.GetDestinationIPAddress());
    }

    [Fact]
    public void IPv4_dont_fragment_alone_is_a_whole_packet()
    {
        byte[] p = IPv4(17, Udp(1, 2, Payload(16)), fragment: 0x4000);
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void Icmp_is_unsupported_protocol_with_l3_filled_in()
    {
        byte[] p = IPv4(1, [8, 0, 0, 0, 0, 1, 0, 1]);
        Assert.Equal(IpDropReason.UnsupportedProtocol, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(L3Kind.IPv4, info.L3);
        Assert.Equal(L4Kind.Other, info.L4);
        Assert.Equal(IpPacketParser.ProtocolIcmp, info.Protocol);
        Assert.Equal(V4Src, info.GetSourceIPAddress());
    }

    [Fact]
    public void IPv6_udp_gives_addresses_ports_and_payload_bounds()
    {
        byte[] p = IPv6(17, Udp(5353, 9001, Payload(33)));
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(L3Kind.IPv6, info.L3);
        Assert.Equal(L4Kind.Udp, info.L4);
        Assert.Equal(40, info.L4Offset);
        Assert.Equal(48, info.PayloadOffset);
        Assert.Equal(33, info.PayloadLength);
        Assert.Equal(p.Length, info.L3Length);
        Assert.Equal(5353, info.SourcePort);
        Assert.Equal(9001, info.DestinationPort);
        Assert.Equal(V6Src, info.GetSourceIPAddress());
        Assert.Equal(V6Dst, info.GetDestinationIPAddress());
        Assert.Equal(0u, info.SourceIPv4);
        Assert.Equal(UInt128.Parse("fd006e6d000000000000000000000002", System.Globalization.NumberStyles.HexNumber), info.DestinationAddress);
    }

    [Fact]
    public void IPv6_extension_headers_are_walked_to_the_transport_header()
    {
        byte[] p = IPv6(6, Tcp(1, 2, Payload(9)), [(0, 8), (43, 24), (60, 16)]);
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(L4Kind.Tcp, info.L4);
        Assert.Equal(IpPacketParser.ProtocolTcp, info.Protocol);
        Assert.Equal(40 + 48, info.L4Offset);
        Assert.Equal(40 + 48 + 20, info.HeaderLength);
        Assert.Equal(9, info.PayloadLength);
    }

    [Fact]
    public void IPv6_hop_by_hop_after_another_extension_is_bad_extension_header()
    {
        byte[] p = IPv6(17, Udp(1, 2, Payload(4)), [(60, 8), (0, 8)]);
        Assert.Equal(IpDropReason.BadExtensionHeader, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void IPv6_more_extension_headers_than_the_limit_are_refused()
    {
        var many = Enumerable.Repeat(((byte)60, 8), IpPacketParser.MaxExtensionHeaders + 1).ToArray();
        byte[] p = IPv6(17, Udp(1, 2, Payload(4)), many);
        Assert.Equal(IpDropReason.TooManyExtensionHeaders, IpPacketParser.Parse(p, out _));
        byte[] atLimit = IPv6(17, Udp(1, 2, Payload(4)), many[..IpPacketParser.MaxExtensionHeaders]);
        Assert.Equal(IpDropReason.None, IpPacketParser.Parse(atLimit, out _));
    }

    [Fact]
    public void IPv6_extension_header_past_the_payload_is_truncated()
    {
        byte[] p = IPv6(17, [], [(43, 8)]);
        p[41] = 2; // claims 24 bytes, only 8 present
        Assert.Equal(IpDropReason.Truncated, IpPacketParser.Parse(p, out _));
    }

    [Theory]
    [InlineData(0, false)]      // atomic fragment: still reported
    [InlineData(0x0009, true)]  // offset 8, M set
    public void IPv6_fragment_header_marks_a_fragment(ushort offsetFlags, bool more)
    {
        byte[] p = IPv6(17, Udp(1, 2, Payload(8)), [(0, 8), (44, 8)]);
        BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(48 + 2), offsetFlags);
        Assert.Equal(IpDropReason.Fragment, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(more, info.MoreFragments);
        Assert.Equal(offsetFlags & 0xFFF8, info.FragmentOffset);
        Assert.Equal(44, info.Protocol);
    }

    [Fact]
    public void IPv6_shorter_than_its_fixed_header_is_truncated()
    {
        byte[] p = IPv6(17, Udp(1, 2, Payload(4)));
        Assert.Equal(IpDropReason.Truncated, IpPacketParser.Parse(p.AsSpan(0, 39), out _));
    }

    [Fact]
    public void IPv6_payload_length_beyond_the_buffer_is_bad_length()
    {
        byte[] p = IPv6(17, Udp(1, 2, Payload(4)), payloadLengthField: 100);
        Assert.Equal(IpDropReason.BadLength, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void IPv6_jumbogram_with_zero_payload_length_is_truncated()
    {
        byte[] p = IPv6(17, Udp(1, 2, Payload(4)), [(0, 8)], payloadLengthField: 0);
        Assert.Equal(IpDropReason.Truncated, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void IPv6_udp_length_zero_is_bad_l4_length()
    {
        byte[] p = IPv6(17, Udp(1, 2, Payload(4), lengthField: 0));
        Assert.Equal(IpDropReason.BadL4Length, IpPacketParser.Parse(p, out _));
    }

    [Fact]
    public void Icmpv6_router_solicitation_is_unsupported_protocol()
    {
        byte[] p = IPv6(58, [133, 0, 0, 0, 0, 0, 0, 0]);
        Assert.Equal(IpDropReason.UnsupportedProtocol, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(IpPacketParser.ProtocolIcmpV6, info.Protocol);
        Assert.Equal(L3Kind.IPv6, info.L3);
    }

    [Fact]
    public void Mld_report_behind_hop_by_hop_is_unsupported_protocol_icmpv6()
    {
        // MLDv2 reports carry a hop-by-hop Router Alert option.
        byte[] p = IPv6(58, [143, 0, 0, 0, 0, 0, 0, 0], [(0, 8)]);
        Assert.Equal(IpDropReason.UnsupportedProtocol, IpPacketParser.Parse(p, out IpPacketInfo info));
        Assert.Equal(IpPacketParser.ProtocolIcmpV6, info.Protocol);
        Assert.Equal(48, info.L4Offset);
    }

    [Fact]
    public void Ethernet_ipv4_offsets_are_from_the_frame_start_and_padding_is_ignored()
    {
        byte[] ip = IPv4(17, Udp(1, 2, []));
        byte[] frame = Ethernet(0x0800, ip, padTo: 60);
        Assert.Equal(IpDropReason.None, IpPacketParser.ParseEthernet(frame, out IpPacketInfo info));
        Assert.Equal(0x0800, info.EtherType);
        Assert.False(info.HasVlan);
        Assert.Equal(14, info.L3Offset);
        Assert.Equal(34, info.L4Offset);
        Assert.Equal(42, info.PayloadOffset);
        Assert.Equal(0, info.PayloadLength);
        Assert.Equal(28, info.L3Length);
    }

    [Fact]
    public void Ethernet_with_one_vlan_tag_parses_ipv6_and_reports_the_tag()
    {
        byte[] frame = Ethernet(0x86DD, IPv6(17, Udp(7, 8, Payload(12))), vlanTci: 0x6064);
        Assert.Equal(IpDropReason.None, IpPacketParser.ParseEthernet(frame, out IpPacketInfo info));
        Assert.True(info.HasVlan);
        Assert.Equal(0x6064, info.VlanTci);
        Assert.Equal(100, info.VlanId);
        Assert.Equal(0x86DD, info.EtherType);
        Assert.Equal(18, info.L3Offset);
        Assert.Equal(18 + 48, info.PayloadOffset);
        Assert.Equal(12, info.PayloadLength);
    }

    [Theory]
    [InlineData((ushort)0x0806)] // ARP
    [InlineData((ushort)0x88CC)] // LLDP
    [InlineData((ushort)0x88A8)] // 802.1ad outer tag
    public void Ethernet_unknown_ethertype_is_dropped(ushort etherType)
    {
        byte[] frame = Ethernet(etherType, new byte[46]);
        Assert.Equal(IpDropReason.UnknownEtherType, IpPacketParser.ParseEthernet(frame, out IpPacketInfo info));
        Assert.Equal(etherType, info.EtherType);
    }

    [Fact]
    public void Ethernet_second_vlan_tag_is_unknown_ethertype()
    {
        byte[] frame = Ethernet(0x8100, new byte[46], vlanTci: 5);
        Assert.Equal(IpDropReason.UnknownEtherType, IpPacketParser.ParseEthernet(frame, out _));
    }

    [Theory]
    [InlineData(13)]
    [InlineData(17)]
    public void Ethernet_header_or_tag_cut_short_is_truncated(int length)
    {
        byte[] frame = Ethernet(0x0800, IPv4(17, Udp(1, 2, [])), vlanTci: 1);
        Assert.Equal(IpDropReason.Truncated, IpPacketParser.ParseEthernet(frame.AsSpan(0, length), out _));
    }

    [Fact]
    public void Ethernet_ethertype_disagreeing_with_the_ip_version_is_bad_version()
    {
        byte[] frame = Ethernet(0x0800, IPv6(17, Udp(1, 2, [])));
        Assert.Equal(IpDropReason.BadVersion, IpPacketParser.ParseEthernet(frame, out _));
    }

    [Fact]
    public void Parsing_allocates_nothing()
    {
        byte[] v4 = IPv4(17, Udp(1, 2, Payload(64)), optionBytes: 8);
        byte[] v6 = Ethernet(0x86DD, IPv6(6, Tcp(1, 2, Payload(64)), [(0, 8), (60, 16)]), vlanTci: 9);
        IpPacketParser.Parse(v4, out _);
        IpPacketParser.ParseEthernet(v6, out _);
        long before = GC.GetAllocatedBytesForCurrentThread();
        int ok = 0;
        for (int i = 0; i < 1000; i++)
        {
            ok += IpPacketParser.Parse(v4, out _) == IpDropReason.None ? 1 : 0;
            ok += IpPacketParser.ParseEthernet(v6, out _) == IpDropReason.None ? 1 : 0;
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(2000, ok);
    }
}
