namespace Netmem.Drivers.Parsing;

/// <summary>
/// Why a driver did not deliver a frame. Every frame is either delivered or counted under one of
/// these. The first values are the parser's <see cref="IpDropReason"/>s, with the same numbers;
/// the rest are the driver's own.
/// </summary>
public enum DropReason
{
    None = IpDropReason.None,
    Truncated = IpDropReason.Truncated,
    BadVersion = IpDropReason.BadVersion,
    BadHeaderLength = IpDropReason.BadHeaderLength,
    BadLength = IpDropReason.BadLength,
    Fragment = IpDropReason.Fragment,
    UnsupportedProtocol = IpDropReason.UnsupportedProtocol,
    BadL4Length = IpDropReason.BadL4Length,
    BadL4HeaderLength = IpDropReason.BadL4HeaderLength,
    BadExtensionHeader = IpDropReason.BadExtensionHeader,
    TooManyExtensionHeaders = IpDropReason.TooManyExtensionHeaders,
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
public static class DropReasons
{
    /// <summary>The driver drop reason of a parser result.</summary>
    public static DropReason From(IpDropReason reason) => (DropReason)(int)reason;
}
