namespace Netmem.Drivers.Parsing;

/// <summary>Why a driver did not deliver a frame. Every frame is either delivered or counted under one of these.</summary>
public enum DropReason
{
    None = 0,

    /// <summary>The frame ends inside a header.</summary>
    Truncated,

    /// <summary>IP version field is neither 4 nor 6.</summary>
    BadVersion,

    /// <summary>An IP length field disagrees with the frame.</summary>
    BadLength,

    /// <summary>Ethertype is not IPv4, IPv6 or one 802.1Q tag over them.</summary>
    UnknownEthertype,

    /// <summary>An IP fragment (IPv4 MF/offset, IPv6 fragment header): not reassembled here.</summary>
    Fragment,

    /// <summary>Neither UDP nor TCP (ICMP, neighbour discovery, ...).</summary>
    UnsupportedProtocol,

    /// <summary>The UDP length or TCP data offset is inconsistent.</summary>
    BadL4Length,

    /// <summary>A datagram with no payload bytes.</summary>
    ZeroPayload,

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
}
