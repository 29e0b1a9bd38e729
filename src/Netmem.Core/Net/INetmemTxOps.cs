using Netmem.Devmem;

namespace Netmem.Net;

/// <summary>
/// A driver's transmit entry for devmem sends (the kernel's <c>netmem_tx</c> capability with
/// <c>ndo_start_xmit</c>). A device whose <see cref="NetDevice.TxOps"/> is set accepts
/// <see cref="NetDevice.BindDmabufTx"/>; <see cref="DevmemSocket.SendDmabuf(uint, ReadOnlySpan{DmabufIov}, DevmemSendFlags)"/>
/// hands each send to <see cref="Transmit"/>.
/// </summary>
public interface INetmemTxOps
{
    /// <summary>
    /// Queues <paramref name="packet"/> for transmit, or refuses it. On success the driver owns
    /// the packet and MUST end it exactly once, from any thread, with
    /// <see cref="DevmemTxPacket.Complete"/> or <see cref="DevmemTxPacket.Cancel"/>; it may do so
    /// before returning. On refusal it must not touch the packet again.
    /// </summary>
    /// <param name="device">The device the send was routed through.</param>
    /// <param name="packet">The datagram: route, sequence number, and payload fragments by DMA address.</param>
    /// <returns>
    /// 0 when queued; otherwise the errno the sender gets: <see cref="Native.Errno.ENOBUFS"/>
    /// (tx queue full), <see cref="Native.Errno.EMSGSIZE"/> (larger than the device's MTU),
    /// <see cref="Native.Errno.ENETDOWN"/> (queue stopped).
    /// </returns>
    int Transmit(NetDevice device, in DevmemTxPacket packet);
}
