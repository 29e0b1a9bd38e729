using System.Buffers.Binary;

namespace Netmem.Drivers.Parsing;

/// <summary>
/// Builds Ethernet/IPv4-or-IPv6/UDP frames into caller memory, for injecting synthetic traffic
/// into a software NIC, and the headers of datagrams a driver transmits. The IPv4 header checksum
/// is filled in; the UDP checksum is left zero (none).
/// </summary>
public static class FrameBuilder
{
    /// <summary>Ethernet + IPv4 + UDP header bytes.</summary>
    public const int UdpV4Overhead = 14 + 20 + 8;

    /// <summary>Ethernet + IPv6 + UDP header bytes.</summary>
    public const int UdpV6Overhead = 14 + 40 + 8;

    /// <summary>
    /// Writes an Ethernet frame carrying a UDP datagram with <paramref name="payload"/>. IPv4
    /// addresses are the low 32 bits of <paramref name="src"/>/<paramref name="dst"/> when
    /// <paramref name="ipv6"/> is false. With <paramref name="vlan"/> &gt; 0 one 802.1Q tag is added.
    /// Returns the frame length.
    /// </summary>
    public static int BuildUdp(Span<byte> dest, bool ipv6, UInt128 src, UInt128 dst, ushort srcPort, ushort dstPort, ReadOnlySpan<byte> payload, ushort vlan = 0)
    {
        int headers = UdpHeaderLength(ethernet: true, ipv6, vlan);
        if (dest.Length < headers + payload.Length)
        {
            throw new ArgumentException($"Frame needs {headers + payload.Length} bytes; the buffer has {dest.Length}.", nameof(dest));
        }

        WriteUdpHeaders(dest, ethernet: true, ipv6, src, dst, srcPort, dstPort, payload.Length, vlan);
        payload.CopyTo(dest[headers..]);
        return headers + payload.Length;
    }

    /// <summary>The bytes of the headers <see cref="WriteUdpHeaders"/> writes.</summary>
    public static int UdpHeaderLength(bool ethernet, bool ipv6, ushort vlan = 0) =>
        (ethernet ? (vlan > 0 ? 18 : 14) : 0) + (ipv6 ? 40 : 20) + 8;

    /// <summary>
    /// Writes the headers of a UDP datagram of <paramref name="payloadLength"/> bytes: Ethernet
    /// (when <paramref name="ethernet"/>, with locally administered MACs and an optional 802.1Q
    /// tag), IPv4 with its header checksum (a kernel receiving it verifies it) or IPv6, and UDP
    /// with checksum 0 (none, allowed for IPv4). The payload goes right after them; returns the
    /// header length. IPv4 addresses are the low 32 bits of <paramref name="src"/>/<paramref name="dst"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="dest"/> is shorter than the headers.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The payload does not fit in one UDP datagram.</exception>
    public static int WriteUdpHeaders(Span<byte> dest, bool ethernet, bool ipv6, UInt128 src, UInt128 dst, ushort srcPort, ushort dstPort, int payloadLength, ushort vlan = 0)
    {
        int headers = UdpHeaderLength(ethernet, ipv6, vlan);
        if (dest.Length < headers)
        {
            throw new ArgumentException($"Headers need {headers} bytes; the buffer has {dest.Length}.", nameof(dest));
        }

        if (payloadLength < 0 || payloadLength > ushort.MaxValue - 8 - (ipv6 ? 0 : 20))
        {
            throw new ArgumentOutOfRangeException(nameof(payloadLength), payloadLength, "Payload too large for one UDP datagram.");
        }

        int off = 0;
        if (ethernet)
        {
            dest[..12].Fill(0x02); // locally administered MACs
            off = 12;
            if (vlan > 0)
            {
                BinaryPrimitives.WriteUInt16BigEndian(dest[off..], IpPacketParser.EtherTypeVlan);
                BinaryPrimitives.WriteUInt16BigEndian(dest[(off + 2)..], (ushort)(vlan & 0x0FFF));
                off += 4;
            }

            BinaryPrimitives.WriteUInt16BigEndian(dest[off..], ipv6 ? IpPacketParser.EtherTypeIPv6 : IpPacketParser.EtherTypeIPv4);
            off += 2;
        }

        int udpLen = 8 + payloadLength;
        if (ipv6)
        {
            dest[off] = 0x60;
            dest[off + 1] = 0;
            dest[off + 2] = 0;
            dest[off + 3] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(dest[(off + 4)..], (ushort)udpLen);
            dest[off + 6] = 17;
            dest[off + 7] = 64;
            BinaryPrimitives.WriteUInt128BigEndian(dest[(off + 8)..], src);
            BinaryPrimitives.WriteUInt128BigEndian(dest[(off + 24)..], dst);
            off += 40;
        }
        else
        {
            Span<byte> ip = dest.Slice(off, 20);
            ip[0] = 0x45;
            ip[1] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(20 + udpLen));
            BinaryPrimitives.WriteUInt32BigEndian(ip[4..], 0); // id, flags, fragment offset
            ip[8] = 64;
            ip[9] = 17;
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], 0);
            BinaryPrimitives.WriteUInt32BigEndian(ip[12..], (uint)src);
            BinaryPrimitives.WriteUInt32BigEndian(ip[16..], (uint)dst);
            var checksum = new InternetChecksum();
            checksum.Add(ip);
            BinaryPrimitives.WriteUInt16BigEndian(ip[10..], checksum.Finish());
            off += 20;
        }

        BinaryPrimitives.WriteUInt16BigEndian(dest[off..], srcPort);
        BinaryPrimitives.WriteUInt16BigEndian(dest[(off + 2)..], dstPort);
        BinaryPrimitives.WriteUInt16BigEndian(dest[(off + 4)..], (ushort)udpLen);
        BinaryPrimitives.WriteUInt16BigEndian(dest[(off + 6)..], 0);
        return headers;
    }

    /// <summary>
    /// Fills a payload that verifies itself: a payload of 8 bytes or more starts with
    /// <paramref name="seq"/> (little-endian) followed by a pattern derived from it; a shorter one
    /// holds a pattern derived from its length.
    /// </summary>
    public static void FillPayload(Span<byte> dest, ulong seq)
    {
        if (dest.Length >= 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(dest, seq);
            Pattern(dest[8..], seq);
        }
        else
        {
            Pattern(dest, (ulong)dest.Length);
        }
    }

    /// <summary>True when <paramref name="data"/> is a payload written by <see cref="FillPayload"/>.</summary>
    public static bool VerifyPayload(ReadOnlySpan<byte> data) => VerifyPayload(data, out _);

    /// <summary>True when <paramref name="data"/> is a payload written by <see cref="FillPayload"/>; gives its sequence number.</summary>
    public static bool VerifyPayload(ReadOnlySpan<byte> data, out ulong seq)
    {
        if (data.Length >= 8)
        {
            seq = BinaryPrimitives.ReadUInt64LittleEndian(data);
            return Matches(data[8..], seq);
        }

        seq = 0;
        return Matches(data, (ulong)data.Length);
    }

    private static void Pattern(Span<byte> dest, ulong seed)
    {
        ulong x = PatternStart(seed);
        for (int i = 0; i < dest.Length; i++)
        {
            dest[i] = PatternNext(ref x);
        }
    }

    private static bool Matches(ReadOnlySpan<byte> data, ulong seed)
    {
        ulong x = PatternStart(seed);
        for (int i = 0; i < data.Length; i++)
        {
            if (data[i] != PatternNext(ref x))
            {
                return false;
            }
        }

        return true;
    }

    private static ulong PatternStart(ulong seed) => (seed * 0x9E3779B97F4A7C15UL) | 1;

    /// <summary>One xorshift step of the payload pattern; its low byte is the next payload byte.</summary>
    private static byte PatternNext(ref ulong x)
    {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return (byte)x;
    }

    /// <summary>
    /// Fills a payload cheaply for high-rate traffic: every 8-byte word holds <paramref name="seq"/>
    /// and trailing bytes its low byte. <see cref="VerifySequencePayload"/> checks it.
    /// </summary>
    public static void FillSequencePayload(Span<byte> dest, ulong seq)
    {
        int words = dest.Length / 8;
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(dest[..(words * 8)]).Fill(seq);
        dest[(words * 8)..].Fill((byte)seq);
    }

    /// <summary>
    /// True when <paramref name="data"/> was written by <see cref="FillSequencePayload"/>; gives its
    /// sequence number (for payloads under 8 bytes only its low byte is known).
    /// </summary>
    public static bool VerifySequencePayload(ReadOnlySpan<byte> data, out ulong seq)
    {
        int words = data.Length / 8;
        if (words == 0)
        {
            seq = data.IsEmpty ? 0UL : data[0];
            return data.IndexOfAnyExcept(data.IsEmpty ? (byte)0 : data[0]) < 0;
        }

        ReadOnlySpan<ulong> w = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(data[..(words * 8)]);
        seq = w[0];
        return w.IndexOfAnyExcept(seq) < 0 && data[(words * 8)..].IndexOfAnyExcept((byte)seq) < 0;
    }
}
