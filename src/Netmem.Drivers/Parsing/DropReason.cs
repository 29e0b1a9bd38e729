namespace Netmem.Drivers.Parsing;

/// <summary>
/// Why a driver did not deliver a frame. Every frame is either delivered or counted under one of
/// these, in <see cref="Common.RxCounters"/>. The values below 32 are the packet parser's reasons
/// (the frame is not a well-formed IPv4 or IPv6 UDP/TCP packet); the rest are the driver's own.
/// </summary>
public enum DropReason
{
    /// <summary>Not dropped: the frame was delivered (never counted).</summary>
    None = IpDropReason.None,

    /// <summary>The bytes end before a header that must be there (Ethernet, IP, extension, UDP, TCP).</summary>
    Truncated = IpDropReason.Truncated,

    /// <summary>The IP version nibble is neither 4 nor 6, or disagrees with the ethertype.</summary>
    BadVersion = IpDropReason.BadVersion,

    /// <summary>IPv4 IHL below 5 words.</summary>
    BadHeaderLength = IpDropReason.BadHeaderLength,

    /// <summary>The IP length field disagrees with the bytes present (longer than the frame, or shorter than the IP header).</summary>
    BadLength = IpDropReason.BadLength,

    /// <summary>An IPv4 fragment (MF set or offset non-zero) or an IPv6 packet with a fragment header: the drivers do not reassemble.</summary>
    Fragment = IpDropReason.Fragment,

    /// <summary>Neither UDP nor TCP: ICMP, ICMPv6 (neighbour discovery, MLD), ESP, AH, no-next-header, ...</summary>
    UnsupportedProtocol = IpDropReason.UnsupportedProtocol,

    /// <summary>The UDP length field is below 8 or runs past the IP payload.</summary>
    BadL4Length = IpDropReason.BadL4Length,

    /// <summary>TCP data offset below 5 words.</summary>
    BadL4HeaderLength = IpDropReason.BadL4HeaderLength,

    /// <summary>An IPv6 extension header is where it may not be (hop-by-hop not first).</summary>
    BadExtensionHeader = IpDropReason.BadExtensionHeader,

    /// <summary>More than 8 IPv6 extension headers, the most the parser walks.</summary>
    TooManyExtensionHeaders = IpDropReason.TooManyExtensionHeaders,

    /// <summary>An Ethernet frame whose ethertype is not IPv4, IPv6, or one 802.1Q tag over them.</summary>
    UnknownEtherType = IpDropReason.UnknownEtherType,

    /// <summary>A datagram with no payload bytes: nothing to place in payload memory.</summary>
    ZeroPayload = 32,

    /// <summary>No socket is bound to the flow.</summary>
    NoSocket,

    /// <summary>The socket is past its outstanding bound (backpressure) or closed.</summary>
    SocketBackpressure,

    /// <summary>The page pool or provider had no memory for the frame.</summary>
    NoMemory,

    /// <summary>The frame is larger than the device accepts.</summary>
    FrameTooLarge,

    /// <summary>The device's receive FIFO was full: the frame never reached the poll loop.</summary>
    RxFifoFull,

    /// <summary>The IP packet is larger than the device's MTU.</summary>
    PacketTooBig,

    /// <summary>
    /// The receive step threw while the frame was in hand: the poll loop caught it, gave back
    /// what the frame held, counted it in <see cref="Common.RxCounters.PollExceptions"/>, traced
    /// it, and went on polling.
    /// </summary>
    PollFault,
}

/// <summary>Conversions between parser and driver drop reasons.</summary>
internal static class DropReasons
{
    /// <summary>The driver drop reason of a parser result.</summary>
    public static DropReason From(IpDropReason reason) => (DropReason)(int)reason;
}
