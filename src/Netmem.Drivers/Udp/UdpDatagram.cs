using System.Runtime.CompilerServices;

namespace Netmem.Drivers.Udp;

/// <summary>
/// One received datagram: its payload as a fragment of a pool netmem (<see cref="Netmem"/> at
/// <see cref="Offset"/>, <see cref="Length"/> bytes), its source, and whether it was cut to fit
/// the buffer. It holds the netmem until it is handed back with <see cref="UdpReceiver.Return(in UdpDatagram)"/>.
/// </summary>
/// <remarks>
/// A plain value: copying it does not copy the buffer, and returning any copy returns the buffer
/// (once: a second return is refused). Read a system-page payload with <see cref="Payload"/>;
/// read a region's <c>net_iov</c> payload through its region
/// (<see cref="Devmem.DmabufRegion.ReadNetIov"/> with <see cref="Netmem"/>, <see cref="Offset"/>
/// and <see cref="Length"/>) or <see cref="UdpReceiver.GetPayload"/>.
/// </remarks>
public readonly unsafe struct UdpDatagram
{
    private readonly nint _data;
    private readonly int _flags;

    internal UdpDatagram(NetmemRef netmem, nint data, int offset, int length, int originalLength, in UdpEndpoint source, int token, bool truncated)
    {
        Netmem = netmem;
        _data = data;
        Offset = offset;
        Length = length;
        OriginalLength = originalLength;
        Source = source;
        Token = token;
        _flags = truncated ? 1 : 0;
    }

    /// <summary>The pool netmem (a page, or a <c>net_iov</c> of the bound region) that holds the payload.</summary>
    public NetmemRef Netmem { get; }

    /// <summary>Where the payload starts inside <see cref="Netmem"/>.</summary>
    public int Offset { get; }

    /// <summary>Payload bytes received (at most the buffer's room).</summary>
    public int Length { get; }

    /// <summary>The datagram's length as sent; above <see cref="Length"/> when it was truncated.</summary>
    public int OriginalLength { get; }

    /// <summary>True when the datagram was larger than the buffer and its tail was discarded by the kernel.</summary>
    public bool Truncated => (_flags & 1) != 0;

    /// <summary>The sender's address and port.</summary>
    public UdpEndpoint Source { get; }

    /// <summary>The receiver's handle for this record, checked when it is returned.</summary>
    public int Token { get; }

    /// <summary>True for a default (empty) record.</summary>
    public bool IsEmpty => Netmem.IsNull;

    /// <summary>
    /// The payload of a system-page buffer. Throws for a <c>net_iov</c>: read region memory
    /// through its <see cref="Devmem.DmabufRegion"/>. Valid until the record is returned.
    /// </summary>
    public ReadOnlySpan<byte> Payload
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if (_data == 0)
            {
                ThrowNotReadable();
            }

            return new ReadOnlySpan<byte>((void*)_data, Length);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowNotReadable() => throw new InvalidOperationException(Netmem.IsNull
        ? "The datagram record is empty."
        : $"The payload is in {Netmem}, region memory: read it through its DmabufRegion (ReadNetIov) or UdpReceiver.GetPayload.");
}
