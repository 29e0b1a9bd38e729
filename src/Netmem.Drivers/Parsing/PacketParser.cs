using System.Buffers.Binary;

namespace Netmem.Drivers.Parsing;

/// <summary>The headers of one frame, as offsets into it. No allocation.</summary>
public struct ParsedPacket
{
    /// <summary>Offset of the IP header (0 for raw IP as TUN delivers it).</summary>
    public int L3Offset;

    public bool IsIPv6;

    /// <summary>802.1Q VLAN id, or 0 when untagged.</summary>
    public ushort VlanId;

    /// <summary>IP protocol of the transport header (17 UDP, 6 TCP).</summary>
    public byte Protocol;

    public int L4Offset;

    /// <summary>Bytes from the frame start to the end of the transport header: what header-data split puts in the header buffer.</summary>
    public int HeaderLength;

    public int PayloadLength;

    /// <summary>Source and destination addresses; IPv4 in the low 32 bits.</summary>
    public UInt128 SrcAddr;

    public UInt128 DstAddr;

    public ushort SrcPort;

    public ushort DstPort;
}

/// <summary>
/// Parses Ethernet frames (optionally one 802.1Q tag) and raw IPv4/IPv6 packets down to the end
/// of the UDP or TCP header, reporting why a frame cannot be delivered. Zero allocation.
/// </summary>
public static class PacketParser
{
    public const ushort EtherTypeIPv4 = 0x0800;
    public const ushort EtherTypeIPv6 = 0x86DD;
    public const ushort EtherTypeVlan = 0x8100;
    public const int EthernetHeaderLength = 14;

    /// <summary>Parses an Ethernet frame.</summary>
    public static DropReason ParseEthernet(ReadOnlySpan<byte> frame, out ParsedPacket p)
    {
        p = default;
        if (frame.Length < EthernetHeaderLength)
        {
            return DropReason.Truncated;
        }

        int off = 12;
        ushort type = BinaryPrimitives.ReadUInt16BigEndian(frame[off..]);
        off += 2;
        if (type == EtherTypeVlan)
        {
            if (frame.Length < off + 4)
            {
                return DropReason.Truncated;
            }

            p.VlanId = (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame[off..]) & 0x0FFF);
            type = BinaryPrimitives.ReadUInt16BigEndian(frame[(off + 2)..]);
            off += 4;
        }

        DropReason r = type switch
        {
            EtherTypeIPv4 => ParseIPv4(frame, off, ref p),
            EtherTypeIPv6 => ParseIPv6(frame, off, ref p),
            _ => DropReason.UnknownEthertype,
        };
        return r;
    }

    /// <summary>Parses a raw IP packet (no link header), as a TUN device delivers it.</summary>
    public static DropReason ParseIp(ReadOnlySpan<byte> packet, out ParsedPacket p)
    {
        p = default;
        if (packet.IsEmpty)
        {
            return DropReason.Truncated;
        }

        return (packet[0] >> 4) switch
        {
            4 => ParseIPv4(packet, 0, ref p),
            6 => ParseIPv6(packet, 0, ref p),
            _ => DropReason.BadVersion,
        };
    }

    private static DropReason ParseIPv4(ReadOnlySpan<byte> f, int off, ref ParsedPacket p)
    {
        p.L3Offset = off;
        if (f.Length < off + 20)
        {
            return DropReason.Truncated;
        }

        if ((f[off] >> 4) != 4)
        {
            return DropReason.BadVersion;
        }

        int ihl = (f[off] & 0x0F) * 4;
        if (ihl < 20)
        {
            return DropReason.BadLength;
        }

        if (f.Length < off + ihl)
        {
            return DropReason.Truncated;
        }

        int total = BinaryPrimitives.ReadUInt16BigEndian(f[(off + 2)..]);
        if (total < ihl || off + total > f.Length)
        {
            return DropReason.BadLength;
        }

        ushort frag = BinaryPrimitives.ReadUInt16BigEndian(f[(off + 6)..]);
        if ((frag & 0x2000) != 0 || (frag & 0x1FFF) != 0)
        {
            return DropReason.Fragment;
        }

        p.Protocol = f[off + 9];
        p.SrcAddr = BinaryPrimitives.ReadUInt32BigEndian(f[(off + 12)..]);
        p.DstAddr = BinaryPrimitives.ReadUInt32BigEndian(f[(off + 16)..]);
        return ParseL4(f, off + ihl, off + total, ref p);
    }

    private static DropReason ParseIPv6(ReadOnlySpan<byte> f, int off, ref ParsedPacket p)
    {
        p.L3Offset = off;
        p.IsIPv6 = true;
        if (f.Length < off + 40)
        {
            return DropReason.Truncated;
        }

        if ((f[off] >> 4) != 6)
        {
            return DropReason.BadVersion;
        }

        int payloadLen = BinaryPrimitives.ReadUInt16BigEndian(f[(off + 4)..]);
        int end = off + 40 + payloadLen;
        if (end > f.Length)
        {
            return DropReason.BadLength;
        }

        p.SrcAddr = BinaryPrimitives.ReadUInt128BigEndian(f[(off + 8)..]);
        p.DstAddr = BinaryPrimitives.ReadUInt128BigEndian(f[(off + 24)..]);
        byte next = f[off + 6];
        int cur = off + 40;

        // Walk extension headers: hop-by-hop (0), routing (43), destination options (60); a
        // fragment header (44) marks a fragment.
        for (int guard = 0; guard < 8; guard++)
        {
            switch (next)
            {
                case 0:
                case 43:
                case 60:
                    if (cur + 8 > end)
                    {
                        return DropReason.Truncated;
                    }

                    next = f[cur];
                    cur += (f[cur + 1] + 1) * 8;
                    if (cur > end)
                    {
                        return DropReason.BadLength;
                    }

                    continue;
                case 44:
                    return DropReason.Fragment;
                default:
                    p.Protocol = next;
                    return ParseL4(f, cur, end, ref p);
            }
        }

        return DropReason.UnsupportedProtocol;
    }

    private static DropReason ParseL4(ReadOnlySpan<byte> f, int off, int end, ref ParsedPacket p)
    {
        p.L4Offset = off;
        switch (p.Protocol)
        {
            case 17:
            {
                if (off + 8 > end)
                {
                    return DropReason.Truncated;
                }

                int udpLen = BinaryPrimitives.ReadUInt16BigEndian(f[(off + 4)..]);
                if (udpLen < 8 || off + udpLen > end)
                {
                    return DropReason.BadL4Length;
                }

                p.SrcPort = BinaryPrimitives.ReadUInt16BigEndian(f[off..]);
                p.DstPort = BinaryPrimitives.ReadUInt16BigEndian(f[(off + 2)..]);
                p.HeaderLength = off + 8;
                p.PayloadLength = udpLen - 8;
                break;
            }

            case 6:
            {
                if (off + 20 > end)
                {
                    return DropReason.Truncated;
                }

                int doff = (f[off + 12] >> 4) * 4;
                if (doff < 20 || off + doff > end)
                {
                    return DropReason.BadL4Length;
                }

                p.SrcPort = BinaryPrimitives.ReadUInt16BigEndian(f[off..]);
                p.DstPort = BinaryPrimitives.ReadUInt16BigEndian(f[(off + 2)..]);
                p.HeaderLength = off + doff;
                p.PayloadLength = end - off - doff;
                break;
            }

            default:
                return DropReason.UnsupportedProtocol;
        }

        return p.PayloadLength == 0 ? DropReason.ZeroPayload : DropReason.None;
    }
}
