namespace Netmem.Drivers.Udp;

/// <summary>What a <see cref="UdpReceiver"/> counted, beside the kernel's own drop counter.</summary>
public readonly record struct UdpReceiverStats
{
    /// <summary>The path the receiver runs.</summary>
    public UdpReceivePath Path { get; init; }

    /// <summary>Datagrams handed to the caller.</summary>
    public long Datagrams { get; init; }

    /// <summary>Payload bytes handed to the caller.</summary>
    public long Bytes { get; init; }

    /// <summary>
    /// Buffers that held several datagrams the kernel coalesced (<see cref="UdpReceiverOptions.Gro"/>);
    /// each was split into one record per datagram.
    /// </summary>
    public long Coalesced { get; init; }

    /// <summary>Datagrams cut to fit their buffer (flagged <see cref="UdpDatagram.Truncated"/>).</summary>
    public long Truncated { get; init; }

    /// <summary>
    /// Times the provided-buffer ring ran dry (<c>ENOBUFS</c>): the multishot request ended and
    /// was armed again after a refill; the datagrams stayed queued on the socket.
    /// </summary>
    public long BufferRingExhausted { get; init; }

    /// <summary>Times the multishot receive was armed (the first time included).</summary>
    public long Arms { get; init; }

    /// <summary>Multishot requests that ended for another reason than ENOBUFS (cancel on thread exit, errors), each armed again.</summary>
    public long OtherTerminations { get; init; }

    /// <summary>
    /// The kernel's drop counter of the socket (<c>SO_RXQ_OVFL</c>): datagrams it dropped before
    /// queueing them (receive buffer full), as of the last datagram received.
    /// </summary>
    public long KernelDrops { get; init; }

    /// <summary>Receive batches (system calls or CQ passes that returned at least one datagram).</summary>
    public long Batches { get; init; }

    /// <summary>Datagrams the kernel delivered after the receiver began closing; their buffers went straight back to the pool.</summary>
    public long DiscardedAtClose { get; init; }

    /// <summary>Records the caller holds now.</summary>
    public int Held { get; init; }
}
