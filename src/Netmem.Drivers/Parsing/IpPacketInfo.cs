using System.Net;

namespace Netmem.Drivers.Parsing;

/// <summary>Why <see cref="IpPacketParser"/> could not hand a packet to a UDP/TCP consumer.</summary>
internal enum IpDropReason : byte
{
    /// <summary>Parsed: an IPv4 or IPv6 packet carrying UDP or TCP.</summary>
    None = 0,

    /// <summary>The bytes end before a header that must be there (Ethernet, IP, extension, UDP, TCP).</summary>
    Truncated,

    /// <summary>The IP version nibble is neither 4 nor 6, or disagrees with the ethertype.</summary>
    BadVersion,

    /// <summary>IPv4 IHL below 5 words.</summary>
    BadHeaderLength,

    /// <summary>The IP length field disagrees with the bytes present (longer than the buffer, or shorter than the IP header).</summary>
    BadLength,

    /// <summary>An IPv4 fragment (MF set or offset non-zero) or an IPv6 packet with a fragment header.</summary>
    Fragment,

    /// <summary>Neither UDP nor TCP: ICMP, ICMPv6 (neighbour discovery, MLD), ESP, AH, no-next-header, ...</summary>
    UnsupportedProtocol,

    /// <summary>The UDP length field is below 8 or runs past the IP payload.</summary>
    BadL4Length,

    /// <summary>TCP data offset below 5 words.</summary>
    BadL4HeaderLength,

    /// <summary>An IPv6 extension header is where it may not be (hop-by-hop not first).</summary>
    BadExtensionHeader,

    /// <summary>More IPv6 extension headers than the parser walks (<see cref="IpPacketParser.MaxExtensionHeaders"/>).</summary>
    TooManyExtensionHeaders,

    /// <summary>An Ethernet frame whose ethertype is not IPv4, IPv6, or one 802.1Q tag over them.</summary>
    UnknownEtherType,
}

/// <summary>The network-layer protocol of a parsed packet.</summary>
internal enum L3Kind : byte
{
    None = 0,
    IPv4,
    IPv6,
}

/// <summary>The transport-layer protocol of a parsed packet.</summary>
internal enum L4Kind : byte
{
    /// <summary>Parsing stopped before the transport header.</summary>
    None = 0,
    Udp,
    Tcp,

    /// <summary>Any other final protocol; see <see cref="IpPacketInfo.Protocol"/>.</summary>
    Other,
}

/// <summary>
/// What <see cref="IpPacketParser"/> learned about one packet. Offsets are from the start of the
/// buffer that was parsed (the IP header for TUN, the Ethernet header for frames). Fields the
/// parser did not reach before a drop keep their default values; on a drop, everything parsed
/// before the failing header is filled in (so an ICMP drop still names its addresses).
/// </summary>
/// <remarks>
/// Addresses are packed without allocation into <see cref="UInt128"/> in network order as a
/// number: an IPv6 address <c>fd00::1</c> is <c>0xfd00_0000_..._0001</c>; an IPv4 address is held
/// IPv4-mapped (<c>::ffff:a.b.c.d</c>), so <see cref="SourceIPv4"/> is its low 32 bits.
/// </remarks>
internal struct IpPacketInfo
{
    /// <summary>Why the packet cannot be consumed, or <see cref="IpDropReason.None"/>.</summary>
    /// <summary>An IPv4 address as this struct stores it: IPv4-mapped IPv6 (::ffff:a.b.c.d).</summary>
    public static UInt128 MapIPv4(uint address) => ((UInt128)0xFFFFu << 32) | address;

    public IpDropReason DropReason { get; internal set; }

    public L3Kind L3 { get; internal set; }

    public L4Kind L4 { get; internal set; }

    /// <summary>IPv4 protocol, or the IPv6 next header after the walked extension headers.</summary>
    public byte Protocol { get; internal set; }

    /// <summary>The ethertype of a frame (after a VLAN tag), 0 for a raw IP packet.</summary>
    public ushort EtherType { get; internal set; }

    /// <summary>Whether the frame carried one 802.1Q tag.</summary>
    public bool HasVlan { get; internal set; }

    /// <summary>The 802.1Q tag control information (PCP, DEI, VLAN id) when <see cref="HasVlan"/>.</summary>
    public ushort VlanTci { get; internal set; }

    /// <summary>The 12-bit VLAN id when <see cref="HasVlan"/>.</summary>
    public readonly int VlanId => VlanTci & 0x0FFF;

    /// <summary>Where the IP header starts.</summary>
    public int L3Offset { get; internal set; }

    /// <summary>The IP packet's length by its own length field (trailing Ethernet padding excluded).</summary>
    public int L3Length { get; internal set; }

    /// <summary>Where the transport header starts (after IPv4 options and IPv6 extension headers).</summary>
    public int L4Offset { get; internal set; }

    /// <summary>
    /// All header bytes: from the start of the buffer to the end of the UDP/TCP header (equal to
    /// <see cref="PayloadOffset"/>). A header-data split places this many bytes in the header buffer.
    /// </summary>
    public readonly int HeaderLength => PayloadOffset;

    /// <summary>Where the transport payload starts.</summary>
    public int PayloadOffset { get; internal set; }

    /// <summary>Transport payload bytes (UDP by its length field; TCP up to the IP length).</summary>
    public int PayloadLength { get; internal set; }

    public UInt128 SourceAddress { get; internal set; }

    public UInt128 DestinationAddress { get; internal set; }

    public ushort SourcePort { get; internal set; }

    public ushort DestinationPort { get; internal set; }

    /// <summary>The TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, ...).</summary>
    public byte TcpFlags { get; internal set; }

    /// <summary>The fragment offset in bytes when the packet is a fragment.</summary>
    public int FragmentOffset { get; internal set; }

    /// <summary>The more-fragments flag when the packet is a fragment.</summary>
    public bool MoreFragments { get; internal set; }

    /// <summary>Whether the packet parsed to a UDP or TCP payload.</summary>
    public readonly bool IsOk => DropReason == IpDropReason.None;

    /// <summary>The IPv4 source in host order (the address's 32 bits as a number); 0 for IPv6.</summary>
    public readonly uint SourceIPv4 => L3 == L3Kind.IPv4 ? (uint)SourceAddress : 0;

    /// <summary>The IPv4 destination in host order; 0 for IPv6.</summary>
    public readonly uint DestinationIPv4 => L3 == L3Kind.IPv4 ? (uint)DestinationAddress : 0;

    /// <summary>The source as an <see cref="IPAddress"/>. Allocates: diagnostics and tests only.</summary>
    public readonly IPAddress GetSourceIPAddress() => ToIPAddress(SourceAddress);

    /// <summary>The destination as an <see cref="IPAddress"/>. Allocates: diagnostics and tests only.</summary>
    public readonly IPAddress GetDestinationIPAddress() => ToIPAddress(DestinationAddress);

    private readonly IPAddress ToIPAddress(UInt128 address)
    {
        Span<byte> bytes = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, address);
        return L3 == L3Kind.IPv4 ? new IPAddress(bytes[12..]) : new IPAddress(bytes);
    }
}
