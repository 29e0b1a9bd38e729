using System.Buffers.Binary;

namespace Netmem.Drivers.Parsing;

/// <summary>
/// The UDP checksum of an IPv6 datagram (RFC 8200 section 8.1), mandatory there (Linux drops a
/// datagram whose checksum is 0): the sum over the pseudo-header (addresses, UDP length, next
/// header 17), the UDP header and the payload. A transmitting driver starts it over the headers
/// <see cref="FrameBuilder.WriteUdpHeaders"/> wrote, adds the payload fragments where they lie,
/// and stores it, as a NIC's checksum offload does while it reads the payload: nothing is copied.
/// </summary>
internal static class Udp6Checksum
{
    /// <summary>Bytes of the IPv6 header and the UDP header that follows it.</summary>
    public const int HeadersLength = 40 + 8;

    /// <summary>
    /// The sum over the pseudo-header and the UDP header of <paramref name="ipv6Udp"/> (an IPv6
    /// header without extension headers, then the UDP header, its checksum field 0); add the
    /// payload to it, then <see cref="Store"/> it.
    /// </summary>
    public static InternetChecksum Begin(ReadOnlySpan<byte> ipv6Udp)
    {
        ReadOnlySpan<byte> udp = ipv6Udp.Slice(40, 8);
        var sum = new InternetChecksum();
        sum.Add(ipv6Udp.Slice(8, 32));
        sum.AddWord(BinaryPrimitives.ReadUInt16BigEndian(udp[4..]));
        sum.AddWord(IpPacketParser.ProtocolUdp);
        sum.Add(udp);
        return sum;
    }

    /// <summary>Writes the finished <paramref name="sum"/> into the UDP header of <paramref name="ipv6Udp"/>; a computed 0 goes out as 0xFFFF.</summary>
    public static void Store(Span<byte> ipv6Udp, in InternetChecksum sum)
    {
        ushort c = sum.Finish();
        BinaryPrimitives.WriteUInt16BigEndian(ipv6Udp[46..], c == 0 ? (ushort)0xFFFF : c);
    }
}
