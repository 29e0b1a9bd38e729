using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;

namespace Netmem.Drivers.SimNic;

/// <summary>
/// SimNic's transmit: for each packet the device writes the Ethernet/IP/UDP headers into a frame
/// and DMA-reads the payload fragments from the TX binding behind them (device-only memory
/// included: the CPU never reads the payload), then puts the frame on the wire, which loops it
/// into an rx queue of this NIC or of another one (<see cref="SimNic.LoopTxTo"/>).
/// </summary>
internal sealed class SimNicTxQueue : DevmemTxQueue
{
    private readonly SimNic _nic;
    private readonly byte[] _frame;
    private long _wireDrops;

    internal SimNicTxQueue(SimNic nic, int capacity)
        : base(nic.Device, 0, capacity)
    {
        _nic = nic;
        _frame = new byte[nic.Options.MaxFrame];
    }

    /// <summary>Frames the wire lost because the receiving queue's FIFO was full (the packets still completed).</summary>
    internal long WireDrops => Interlocked.Read(ref _wireDrops);

    /// <summary>Where frames go: this NIC's queue 0 until <see cref="SimNic.LoopTxTo"/> says otherwise.</summary>
    internal (SimNic Nic, int Queue) Wire { get; set; }

    /// <inheritdoc/>
    protected override int MaxPayload(bool ipv6) => _nic.Options.Mtu - (ipv6 ? 40 : 20) - 8;

    /// <inheritdoc/>
    protected internal override TxOutcome Xmit(in DevmemTxPacket packet)
    {
        Net.DevmemTxRoute route = packet.Route;
        Span<byte> frame = _frame;
        int off = FrameBuilder.WriteUdpHeaders(frame, ethernet: true, route.IsIPv6, route.SourceAddress, route.DestinationAddress,
            route.SourcePort, route.DestinationPort, packet.PayloadLength);
        DmaDevice dma = _nic.Dma;
        for (int i = 0; i < packet.FragCount; i++)
        {
            DevmemTxFrag f = packet.GetFrag(i);
            dma.DmaRead(f.DmaAddress, frame.Slice(off, f.Length));
            off += f.Length;
        }

        (SimNic nic, int queue) = Wire;
        bool delivered;
        try
        {
            delivered = nic.Inject(queue, frame[..off]);
        }
        catch (ObjectDisposedException)
        {
            delivered = false; // the far end is gone: the wire loses the frame
        }

        if (!delivered)
        {
            Interlocked.Increment(ref _wireDrops);
        }

        return TxOutcome.Sent;
    }
}
