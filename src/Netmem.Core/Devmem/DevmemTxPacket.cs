using System.Runtime.CompilerServices;
using Netmem.Net;

namespace Netmem.Devmem;

/// <summary>
/// One payload fragment of a devmem send: <see cref="Length"/> bytes at <see cref="DmaAddress"/>
/// in the device's IOVA space, inside one <c>net_iov</c> (4 KiB) of the TX binding, as the
/// kernel's <c>zerocopy_fill_skb_from_devmem</c> fills an skb frag. The device reads it with
/// <see cref="DmaDevice.DmaRead"/>; the CPU never has to.
/// </summary>
/// <param name="DmaAddress">The fragment's DMA address.</param>
/// <param name="RegionOffset">The fragment's byte offset in the region.</param>
/// <param name="Length">Bytes, 1 to 4096.</param>
public readonly record struct DevmemTxFrag(ulong DmaAddress, ulong RegionOffset, int Length);

/// <summary>The fixed fragment storage of a <see cref="DevmemTxPacket"/> (no allocation per send).</summary>
[InlineArray(DevmemTxPacket.MaxFrags)]
internal struct DevmemTxFrags
{
    private DevmemTxFrag _first;
}

/// <summary>
/// A datagram a <see cref="DevmemSocket"/> hands to a driver's <see cref="INetmemTxOps.Transmit"/>:
/// the route to build headers from, the zero-copy sequence number, and the payload as fragments
/// of the TX binding. The packet holds a reference on the binding (the kernel's per-frag
/// <c>net_iov</c> reference), so an unbound binding lingers until every packet has ended.
/// </summary>
/// <remarks>
/// A driver that accepted a packet ends it exactly once: <see cref="Complete"/> when the device
/// has read the payload, <see cref="Cancel"/> when it never will. Ending tells the socket
/// (which then reports a <see cref="ZeroCopyCompletion"/> in sequence order) and drops the
/// binding reference. Copies of the struct share that duty: end one of them, once.
/// </remarks>
public readonly struct DevmemTxPacket
{
    /// <summary>Most fragments one send may have (the kernel's <c>MAX_SKB_FRAGS</c>); more is EMSGSIZE.</summary>
    public const int MaxFrags = 17;

    private readonly DevmemTxFrags _frags;

    internal DevmemTxPacket(DevmemSocket socket, DevmemTxRoute route, DmabufBinding binding, uint sequence, in DevmemTxFrags frags, int fragCount, int payloadLength)
    {
        Socket = socket;
        Route = route;
        Binding = binding;
        Sequence = sequence;
        _frags = frags;
        FragCount = fragCount;
        PayloadLength = payloadLength;
    }

    /// <summary>The sending socket.</summary>
    public DevmemSocket Socket { get; }

    /// <summary>The addresses and ports to put in the headers.</summary>
    public DevmemTxRoute Route { get; }

    /// <summary>The TX binding the payload lives in.</summary>
    public DmabufBinding Binding { get; }

    /// <summary>The zero-copy sequence number the completion will carry.</summary>
    public uint Sequence { get; }

    /// <summary>Number of payload fragments, 1 to <see cref="MaxFrags"/>.</summary>
    public int FragCount { get; }

    /// <summary>Payload bytes (the sum of the fragments' lengths; the UDP payload).</summary>
    public int PayloadLength { get; }

    /// <summary>True for a packet made by a socket; false for <c>default</c>.</summary>
    public bool IsValid => Socket is not null;

    /// <summary>Fragment <paramref name="index"/>, 0 to <see cref="FragCount"/> - 1.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is not below <see cref="FragCount"/>.</exception>
    public DevmemTxFrag GetFrag(int index)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)FragCount, nameof(index));
        return _frags[index];
    }

    /// <summary>
    /// The device has read the payload: the socket reports the send done with
    /// <paramref name="code"/>, and the binding reference is dropped.
    /// </summary>
    /// <param name="code"><see cref="ZeroCopyCode.ZeroCopy"/>, or <see cref="ZeroCopyCode.Copied"/> when the driver copied the payload first.</param>
    /// <exception cref="InvalidOperationException">The packet was already ended (nothing changes).</exception>
    public void Complete(ZeroCopyCode code = ZeroCopyCode.ZeroCopy)
    {
        if (code == ZeroCopyCode.Cancelled)
        {
            throw new ArgumentException("use Cancel() for a packet that never reached the wire", nameof(code));
        }

        End(code);
    }

    /// <summary>The packet will never be sent: the socket reports it cancelled, and the binding reference is dropped.</summary>
    /// <exception cref="InvalidOperationException">The packet was already ended (nothing changes).</exception>
    public void Cancel() => End(ZeroCopyCode.Cancelled);

    /// <inheritdoc/>
    public override string ToString() => $"devmem tx #{Sequence} ({PayloadLength} bytes in {FragCount} frags, binding {Binding?.Id})";

    private void End(ZeroCopyCode code)
    {
        if (Socket is null)
        {
            throw new InvalidOperationException("default(DevmemTxPacket) is not a packet");
        }

        Socket.EndTx(Sequence, code, PayloadLength);
        Binding.Put();
    }
}
