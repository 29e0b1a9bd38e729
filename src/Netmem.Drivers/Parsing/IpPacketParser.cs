using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Netmem.Drivers.Parsing;

/// <summary>
/// Zero-allocation parser for the packets a software NIC sees: raw IP packets as a TUN device
/// delivers them (<see cref="Parse"/>) and Ethernet frames (<see cref="ParseEthernet"/>), down to
/// the UDP or TCP header. It finds where headers end and payload begins (for header-data split),
/// the addresses and ports, and, when a packet cannot be consumed, a specific
/// <see cref="IpDropReason"/>.
/// </summary>
/// <remarks>
/// The parser checks structure, not checksums: the IPv4 header checksum and the L4 checksums are
/// left to the consumer (packets the local kernel sends into a TUN are well formed, and UDP/TCP
/// checksums may be partial under offload). Every read is preceded by an explicit length check,
/// after which the reads themselves skip bounds checks. Lengths follow the kernel's rules: IP
/// padding after the IP length is ignored, a UDP length shorter than the IP payload trims it.
/// </remarks>
internal static class IpPacketParser
{
    /// <summary>The most IPv6 extension headers walked before giving up.</summary>
    public const int MaxExtensionHeaders = 8;

    public const ushort EtherTypeIPv4 = 0x0800;
    public const ushort EtherTypeIPv6 = 0x86DD;
    public const ushort EtherTypeVlan = 0x8100;

    public const byte ProtocolIcmp = 1;
    public const byte ProtocolTcp = 6;
    public const byte ProtocolUdp = 17;
    public const byte ProtocolIcmpV6 = 58;

    private const byte Ipv6HopByHop = 0;
    private const byte Ipv6Routing = 43;
    private const byte Ipv6Fragment = 44;
    private const byte Ipv6DestinationOptions = 60;

    private const int EthernetHeaderLength = 14;
    private const int VlanTagLength = 4;
    private const int Ipv4MinHeaderLength = 20;
    private const int Ipv6HeaderLength = 40;
    private const int UdpHeaderLength = 8;
    private const int TcpMinHeaderLength = 20;

    /// <summary>Parses a raw IP packet (version from the first nibble), as read from a TUN with IFF_NO_PI.</summary>
    public static IpDropReason Parse(ReadOnlySpan<byte> packet, out IpPacketInfo info)
    {
        info = default;
        if (packet.IsEmpty)
        {
            return Drop(ref info, IpDropReason.Truncated);
        }

        return (packet[0] >> 4) switch
        {
            4 => ParseIPv4At(packet, 0, ref info),
            6 => ParseIPv6At(packet, 0, ref info),
            _ => Drop(ref info, IpDropReason.BadVersion),
        };
    }

    /// <summary>Parses an IPv4 packet (and its UDP/TCP header) starting at offset 0.</summary>
    public static IpDropReason ParseIPv4(ReadOnlySpan<byte> packet, out IpPacketInfo info)
    {
        info = default;
        return ParseIPv4At(packet, 0, ref info);
    }

    /// <summary>Parses an IPv6 packet (extension headers, then UDP/TCP) starting at offset 0.</summary>
    public static IpDropReason ParseIPv6(ReadOnlySpan<byte> packet, out IpPacketInfo info)
    {
        info = default;
        return ParseIPv6At(packet, 0, ref info);
    }

    /// <summary>
    /// Parses an Ethernet II frame without FCS: ethertype 0x0800 or 0x86DD, optionally behind one
    /// 802.1Q tag (0x8100). A second tag, 802.1ad, ARP and anything else give
    /// <see cref="IpDropReason.UnknownEtherType"/>. Offsets in <paramref name="info"/> are from the
    /// start of the frame.
    /// </summary>
    public static IpDropReason ParseEthernet(ReadOnlySpan<byte> frame, out IpPacketInfo info)
    {
        info = default;
        if (frame.Length < EthernetHeaderLength)
        {
            return Drop(ref info, IpDropReason.Truncated);
        }

        ref byte b = ref MemoryMarshal.GetReference(frame);
        ushort etherType = Be16(ref b, 12);
        int offset = EthernetHeaderLength;
        if (etherType == EtherTypeVlan)
        {
            if (frame.Length < EthernetHeaderLength + VlanTagLength)
            {
                return Drop(ref info, IpDropReason.Truncated);
            }

            info.HasVlan = true;
            info.VlanTci = Be16(ref b, 14);
            etherType = Be16(ref b, 16);
            offset += VlanTagLength;
        }

        info.EtherType = etherType;
        return etherType switch
        {
            EtherTypeIPv4 => ParseIPv4At(frame, offset, ref info),
            EtherTypeIPv6 => ParseIPv6At(frame, offset, ref info),
            _ => Drop(ref info, IpDropReason.UnknownEtherType),
        };
    }

    private static IpDropReason ParseIPv4At(ReadOnlySpan<byte> buffer, int l3, ref IpPacketInfo info)
    {
        info.L3Offset = l3;
        int available = buffer.Length - l3;
        if (available < 1)
        {
            return Drop(ref info, IpDropReason.Truncated);
        }

        ref byte b = ref MemoryMarshal.GetReference(buffer);
        byte versionIhl = Unsafe.Add(ref b, l3);
        if (versionIhl >> 4 != 4)
        {
            return Drop(ref info, IpDropReason.BadVersion);
        }

        if (available < Ipv4MinHeaderLength)
        {
            return Drop(ref info, IpDropReason.Truncated);
        }

        info.L3 = L3Kind.IPv4;
        int headerLength = (versionIhl & 0x0F) * 4;
        if (headerLength < Ipv4MinHeaderLength)
        {
            return Drop(ref info, IpDropReason.BadHeaderLength);
        }

        if (headerLength > available)
        {
            return Drop(ref info, IpDropReason.Truncated);
        }

        info.Protocol = Unsafe.Add(ref b, l3 + 9);
        info.SourceAddress = MappedIPv4(Be32(ref b, l3 + 12));
        info.DestinationAddress = MappedIPv4(Be32(ref b, l3 + 16));

        int totalLength = Be16(ref b, l3 + 2);
        if (totalLength < headerLength || totalLength > available)
        {
            return Drop(ref info, IpDropReason.BadLength);
        }

        info.L3Length = totalLength;
        ushort fragment = Be16(ref b, l3 + 6);
        if ((fragment & 0x3FFF) != 0)
        {
            // MF (0x2000) or a non-zero offset; DF (0x4000) alone is a whole packet.
            info.MoreFragments = (fragment & 0x2000) != 0;
            info.FragmentOffset = (fragment & 0x1FFF) * 8;
            return Drop(ref info, IpDropReason.Fragment);
        }

        return ParseL4(buffer, l3 + headerLength, l3 + totalLength, ref info);
    }

    private static IpDropReason ParseIPv6At(ReadOnlySpan<byte> buffer, int l3, ref IpPacketInfo info)
    {
        info.L3Offset = l3;
        int available = buffer.Length - l3;
        if (available < 1)
        {
            return Drop(ref info, IpDropReason.Truncated);
        }

        ref byte b = ref MemoryMarshal.GetReference(buffer);
        if (Unsafe.Add(ref b, l3) >> 4 != 6)
        {
            return Drop(ref info, IpDropReason.BadVersion);
        }

        if (available < Ipv6HeaderLength)
        {
            return Drop(ref info, IpDropReason.Truncated);
        }

        info.L3 = L3Kind.IPv6;
        info.SourceAddress = Be128(ref b, l3 + 8);
        info.DestinationAddress = Be128(ref b, l3 + 24);
        int payloadLength = Be16(ref b, l3 + 4);
        if (Ipv6HeaderLength + payloadLength > available)
        {
            return Drop(ref info, IpDropReason.BadLength);
        }

        // A payload length of 0 with a hop-by-hop header would be a jumbogram: its extension
        // header cannot fit in a zero-length payload, so the walk below reports Truncated.
        int end = l3 + Ipv6HeaderLength + payloadLength;
        info.L3Length = Ipv6HeaderLength + payloadLength;
        byte next = Unsafe.Add(ref b, l3 + 6);
        int offset = l3 + Ipv6HeaderLength;
        for (int walked = 0; ; walked++)
        {
            info.Protocol = next;
            switch (next)
            {
                case Ipv6HopByHop:
                case Ipv6Routing:
                case Ipv6DestinationOptions:
                    if (next == Ipv6HopByHop && walked != 0)
                    {
                        return Drop(ref info, IpDropReason.BadExtensionHeader);
                    }

                    if (walked == MaxExtensionHeaders)
                    {
                        return Drop(ref info, IpDropReason.TooManyExtensionHeaders);
                    }

                    if (end - offset < 8)
                    {
                        return Drop(ref info, IpDropReason.Truncated);
                    }

                    int extLength = (Unsafe.Add(ref b, offset + 1) + 1) * 8;
                    if (end - offset < extLength)
                    {
                        return Drop(ref info, IpDropReason.Truncated);
                    }

                    next = Unsafe.Add(ref b, offset);
                    offset += extLength;
                    continue;

                case Ipv6Fragment:
                    if (end - offset < 8)
                    {
                        return Drop(ref info, IpDropReason.Truncated);
                    }

                    ushort offsetFlags = Be16(ref b, offset + 2);
                    info.FragmentOffset = offsetFlags & 0xFFF8;
                    info.MoreFragments = (offsetFlags & 1) != 0;

                    // Even an atomic fragment (offset 0, M clear) is reported: reassembly is not ours.
                    return Drop(ref info, IpDropReason.Fragment);

                default:
                    return ParseL4(buffer, offset, end, ref info);
            }
        }
    }

    /// <summary>Parses the transport header at <paramref name="l4"/>; <paramref name="end"/> is where the IP packet ends.</summary>
    private static IpDropReason ParseL4(ReadOnlySpan<byte> buffer, int l4, int end, ref IpPacketInfo info)
    {
        info.L4Offset = l4;
        ref byte b = ref MemoryMarshal.GetReference(buffer);
        int available = end - l4;
        switch (info.Protocol)
        {
            case ProtocolUdp:
            {
                info.L4 = L4Kind.Udp;
                if (available < UdpHeaderLength)
                {
                    return Drop(ref info, IpDropReason.Truncated);
                }

                info.SourcePort = Be16(ref b, l4);
                info.DestinationPort = Be16(ref b, l4 + 2);
                int udpLength = Be16(ref b, l4 + 4);
                if (udpLength < UdpHeaderLength || udpLength > available)
                {
                    return Drop(ref info, IpDropReason.BadL4Length);
                }

                info.PayloadOffset = l4 + UdpHeaderLength;
                info.PayloadLength = udpLength - UdpHeaderLength;
                return IpDropReason.None;
            }

            case ProtocolTcp:
            {
                info.L4 = L4Kind.Tcp;
                if (available < TcpMinHeaderLength)
                {
                    return Drop(ref info, IpDropReason.Truncated);
                }

                info.SourcePort = Be16(ref b, l4);
                info.DestinationPort = Be16(ref b, l4 + 2);
                info.TcpFlags = Unsafe.Add(ref b, l4 + 13);
                int dataOffset = (Unsafe.Add(ref b, l4 + 12) >> 4) * 4;
                if (dataOffset < TcpMinHeaderLength)
                {
                    return Drop(ref info, IpDropReason.BadL4HeaderLength);
                }

                if (dataOffset > available)
                {
                    return Drop(ref info, IpDropReason.Truncated);
                }

                info.PayloadOffset = l4 + dataOffset;
                info.PayloadLength = available - dataOffset;
                return IpDropReason.None;
            }

            default:
                info.L4 = L4Kind.Other;
                info.PayloadOffset = l4;
                info.PayloadLength = available;
                return Drop(ref info, IpDropReason.UnsupportedProtocol);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static IpDropReason Drop(ref IpPacketInfo info, IpDropReason reason)
    {
        info.DropReason = reason;
        return reason;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static UInt128 MappedIPv4(uint address) => IpPacketInfo.MapIPv4(address);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort Be16(ref byte b, int offset)
    {
        ushort v = Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref b, offset));
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(v) : v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Be32(ref byte b, int offset)
    {
        uint v = Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, offset));
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(v) : v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static UInt128 Be128(ref byte b, int offset)
    {
        UInt128 v = Unsafe.ReadUnaligned<UInt128>(ref Unsafe.Add(ref b, offset));
        return BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(v) : v;
    }
}
