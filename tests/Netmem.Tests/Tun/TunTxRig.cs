using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>
/// A TunNic that transmits from a bound region to an ordinary kernel UDP socket of its own
/// namespace: the devmem socket sends from the TUN subnet's peer address to the TUN's own
/// address, the namespace's kernel receives what TunNic writes and delivers it to
/// <see cref="Receiver"/>. <see cref="RoundTrip"/> sends a numbered, verified stream.
/// </summary>
internal sealed class TunTxRig : IDisposable
{
    internal const ushort SourcePort = 7301;
    internal const ushort DestinationPort = 7300;

    private readonly byte[] _scratch = new byte[KernelUdpRoundTrip.SlotStride];
    private readonly KernelUdpRoundTrip _roundTrip = null!;

    internal TunTxRig(bool deviceOnly = false, bool ipv6 = false)
    {
        IsIPv6 = ipv6;
        Namespace = NetNamespace.Create();
        try
        {
            Region = deviceOnly ? DmabufRegion.CreateDeviceOnly(KernelUdpRoundTrip.SlotBytes) : DmabufRegion.CreateMemfd("tun-tx", KernelUdpRoundTrip.SlotBytes);
            Nic = new TunNic(Namespace, new TunNicOptions { Configuration = new TunConfiguration { IPv6LinkLocal = false } });
            Handle = Nic.Device.BindDmabufTx(Region);
            Source = new IPEndPoint(ipv6 ? TunDevice.PeerIPv6 : TunDevice.PeerIPv4, SourcePort);
            Destination = new IPEndPoint(ipv6 ? TunDevice.LocalIPv6 : TunDevice.LocalIPv4, DestinationPort);
            Socket = new DevmemSocket(FlowKey.Udp(SourcePort), maxTxInFlight: 1024) { ZeroCopy = true };
            Socket.Connect(Nic.Device, Source, Destination);
            Receiver = NamespaceUdpReceiver.Open(Namespace, Destination, receiveTimeoutMs: 5000);
            _roundTrip = new KernelUdpRoundTrip
            {
                Socket = Socket,
                Receiver = Receiver,
                Source = Source,
                BindingId = Id,
                WritePayload = WritePayload,
                Describe = () => $"tx {Nic.TxStats}, writes {Nic.TxCounters}",
            };
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public bool IsIPv6 { get; }

    public NetNamespace Namespace { get; }

    public DmabufRegion Region { get; } = null!;

    public TunNic Nic { get; } = null!;

    public DmabufBindingHandle Handle { get; } = null!;

    public IPEndPoint Source { get; } = null!;

    public IPEndPoint Destination { get; } = null!;

    public DevmemSocket Socket { get; } = null!;

    /// <summary>The kernel UDP socket bound to <see cref="Destination"/> inside the namespace.</summary>
    public Socket Receiver { get; } = null!;

    /// <summary>The largest payload TunNic sends in one datagram (MTU 1500).</summary>
    public int MaxPayload => 1500 - (IsIPv6 ? 40 : 20) - 8;

    public uint Id => (uint)Handle.BindingId;

    /// <summary>The DMA address of region offset <paramref name="offset"/> in the TX binding.</summary>
    public ulong DmaAddressOf(long offset)
    {
        foreach (DmaSegment s in Handle.Binding.Segments)
        {
            if (offset >= s.RegionOffset && offset < s.RegionOffset + s.Length)
            {
                return s.DmaAddress + (ulong)(offset - s.RegionOffset);
            }
        }

        throw new ArgumentOutOfRangeException(nameof(offset));
    }

    /// <summary>
    /// Sends datagrams 0..<paramref name="count"/>-1 from the region and checks every datagram
    /// and every completion (zero-copy) with <see cref="KernelUdpRoundTrip"/>. Returns the payload bytes.
    /// </summary>
    public long RoundTrip(int count, Func<int, int> sizeOf, TimeSpan timeLimit) =>
        _roundTrip.Run(count, sizeOf, ZeroCopyCode.ZeroCopy, timeLimit);

    /// <summary>Puts the payload of datagram <paramref name="seq"/> at <paramref name="offset"/>: through the CPU mapping, or by the device for a device-only region.</summary>
    private void WritePayload(long offset, int size, ulong seq)
    {
        if (Region.IsCpuMapped)
        {
            FrameBuilder.FillSequencePayload(Region.GetSpan(offset, size), seq);
        }
        else
        {
            Span<byte> p = _scratch.AsSpan(0, size);
            FrameBuilder.FillSequencePayload(p, seq);
            Nic.Dma.DmaWrite(DmaAddressOf(offset), p);
        }
    }

    public void Dispose()
    {
        Socket?.Dispose();
        Handle?.Dispose();
        Nic?.Dispose();
        Receiver?.Dispose();
        Region?.Dispose();
        Namespace.Dispose();
    }
}
