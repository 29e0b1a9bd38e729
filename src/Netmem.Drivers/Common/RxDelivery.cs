using Netmem.Devmem;
using Netmem.Drivers.Parsing;

namespace Netmem.Drivers.Common;

/// <summary>
/// The receive path shared by the drivers: place one parsed frame into queue memory the way a
/// NIC with header-data split would, and hand it to the socket its flow steers to. Called only
/// from the queue's poll loop, the consumer of the queue's pools.
/// </summary>
internal static class RxDelivery
{
    /// <summary>Most payload fragments one datagram can span (64 KiB over 4 KiB netmems).</summary>
    public const int MaxFragments = 17;

    /// <summary>
    /// Delivers <paramref name="frame"/> (parsed into <paramref name="p"/>). With header-data
    /// split, headers up to the end of the L4 header go into a header-pool buffer and the
    /// payload into rx descriptors from the payload pool, written by device DMA when they are
    /// <c>net_iov</c>s; without it the whole frame lands in one readable buffer. A frame that
    /// cannot be delivered is counted by reason and every netmem it took goes back.
    /// </summary>
    public static void Deliver(ReadOnlySpan<byte> frame, in IpPacketInfo p, QueueMemory mem, DmaDevice? dma, FlowSteering flows, RxCounters counters)
    {
        DevmemSocket? socket = Steer(p, flows, counters);
        if (socket is null)
        {
            return;
        }

        if (mem.HeaderDataSplit)
        {
            DeliverSplit(frame, p, mem, dma, socket, counters);
        }
        else
        {
            DeliverLinear(frame, p, mem, socket, counters);
        }
    }

    /// <summary>
    /// The socket the flow of <paramref name="p"/> steers to; null, with the drop counted
    /// (<see cref="DropReason.ZeroPayload"/> or <see cref="DropReason.NoSocket"/>), when the
    /// datagram goes nowhere. A driver whose device already placed the payload calls it before
    /// consuming the headers.
    /// </summary>
    internal static DevmemSocket? Steer(in IpPacketInfo p, FlowSteering flows, RxCounters counters)
    {
        if (p.PayloadLength == 0)
        {
            counters.Drop(DropReason.ZeroPayload);
            return null;
        }

        var key = new FlowKey(p.L4 == L4Kind.Tcp ? IpProtocol.Tcp : IpProtocol.Udp, p.DestinationPort, p.SourceAddress, p.DestinationAddress, p.SourcePort);
        DevmemSocket? socket = flows.Lookup(key);
        if (socket is null)
        {
            counters.Drop(DropReason.NoSocket);
        }

        return socket;
    }

    private static void DeliverSplit(ReadOnlySpan<byte> frame, in IpPacketInfo p, QueueMemory mem, DmaDevice? dma, DevmemSocket socket, RxCounters counters)
    {
        if (!ConsumeHeaders(mem, frame[..p.HeaderLength], counters))
        {
            return;
        }

        RxPacketInHand inHand = mem.InHand;
        int src = p.HeaderLength;
        int left = p.PayloadLength;
        while (left > 0)
        {
            NetmemRef d = inHand.HasRoom ? mem.TakeRxDescriptor() : NetmemRef.Null;
            if (d.IsNull)
            {
                inHand.GiveBack();
                counters.Drop(DropReason.NoMemory);
                return;
            }

            int len = Math.Min(left, d.Size);
            inHand.Add(mem.PayloadPool, new RxFragment(d, 0, len));
            WritePayload(d, frame.Slice(src, len), dma);
            src += len;
            left -= len;
        }

        Hand(socket, mem, p.PayloadLength, counters);
    }

    private static void DeliverLinear(ReadOnlySpan<byte> frame, in IpPacketInfo p, QueueMemory mem, DevmemSocket socket, RxCounters counters)
    {
        if (frame.Length > mem.HeaderPool.NetmemSize)
        {
            counters.Drop(DropReason.FrameTooLarge);
            return;
        }

        NetmemRef buf = mem.HeaderPool.AllocFrag(frame.Length, out int offset);
        if (buf.IsNull)
        {
            counters.Drop(DropReason.NoMemory);
            return;
        }

        mem.InHand.Add(mem.HeaderPool, new RxFragment(buf, offset + p.HeaderLength, p.PayloadLength));
        frame.CopyTo(buf.GetPageSpan()[offset..]);
        Hand(socket, mem, p.PayloadLength, counters);
    }

    /// <summary>
    /// Header-data split: the device writes the headers into header-pool buffers, where the
    /// protocol stack consumes them and each buffer goes back at once. Headers longer than one
    /// buffer (an IPv6 extension-header chain can reach several KiB at a 9000-byte MTU) span as
    /// many buffers as they need. False (counted as NoMemory) when there was no header buffer.
    /// </summary>
    internal static bool ConsumeHeaders(QueueMemory mem, ReadOnlySpan<byte> headers, RxCounters counters)
    {
        PagePool pool = mem.HeaderPool;
        int most = pool.NetmemSize;
        while (!headers.IsEmpty)
        {
            int len = Math.Min(headers.Length, most);
            NetmemRef header = pool.AllocFrag(len, out int headerOffset);
            if (header.IsNull)
            {
                counters.Drop(DropReason.NoMemory);
                return false;
            }

            headers[..len].CopyTo(header.GetPageSpan()[headerOffset..]);
            pool.RecycleDirect(header);
            headers = headers[len..];
        }

        return true;
    }

    /// <summary>
    /// Hands the datagram in hand (<see cref="QueueMemory.InHand"/>) to its socket and counts it
    /// delivered; when the socket pushes back, the fragments go back to their pool and the drop
    /// is counted.
    /// </summary>
    internal static void Hand(DevmemSocket socket, QueueMemory mem, int payloadLength, RxCounters counters)
    {
        mem.FaultInjection?.Invoke();
        RxPacketInHand inHand = mem.InHand;
        if (!socket.TryDeliver(inHand.Fragments))
        {
            inHand.GiveBack();
            counters.Drop(DropReason.SocketBackpressure);
            return;
        }

        inHand.Handed();
        counters.Delivered(payloadLength);
    }

    /// <summary>The device writes payload: by DMA into a <c>net_iov</c>, or into a readable page.</summary>
    private static void WritePayload(NetmemRef d, ReadOnlySpan<byte> data, DmaDevice? dma)
    {
        if (d.IsNetIov)
        {
            (dma ?? throw new InvalidOperationException("A net_iov rx descriptor needs the device's DmaDevice.")).DmaWrite(d.DmaAddress, data);
        }
        else
        {
            data.CopyTo(d.GetPageSpan());
        }
    }
}
