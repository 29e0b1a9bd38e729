using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Drivers.Xdp;
using Netmem.Net;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>
/// An XdpNic on a veth's device end whose queue 0 is bound for rx to a memfd region that is also
/// bound for tx, a <see cref="DevmemSocket"/> connected from the device end's address to an
/// ordinary kernel UDP socket (<see cref="Receiver"/>) in the peer namespace (IPv4, or IPv6 when
/// asked), and <see cref="RoundTrip"/>, which sends a numbered, verified stream from the region
/// and checks every datagram and every completion (<see cref="KernelUdpRoundTrip"/>).
/// </summary>
/// <remarks>
/// The payload slots are the region's last <see cref="KernelUdpRoundTrip.SlotBytes"/>: the rx
/// binding hands the queue chunks from the bottom of the region (fill ring, header chunks), and
/// the rig checks that none of them reaches the slots, so neither the kernel's receive nor the
/// driver's headers write into a payload. Nothing is sent to the device end.
/// </remarks>
internal sealed class XdpTxRig : IDisposable
{
    /// <summary>The region's size.</summary>
    internal const long RegionBytes = 32 << 20;

    /// <summary>The region offset of payload slot 0.</summary>
    internal const long PayloadBase = RegionBytes - KernelUdpRoundTrip.SlotBytes;

    internal const ushort SourcePort = 7401;
    internal const ushort DestinationPort = 7400;

    private readonly KernelUdpRoundTrip _roundTrip = null!;

    internal XdpTxRig(XdpNicOptions? options = null, Func<VethPair, XdpNicOptions>? optionsFor = null, bool ipv6 = false)
    {
        IsIPv6 = ipv6;
        Veth = VethPair.Create();
        try
        {
            Options = optionsFor?.Invoke(Veth) ?? options ?? new XdpNicOptions { TxDestinationMac = Veth.PeerMacAddress.ToArray() };
            Bound = new XdpBoundNic(Veth, "xdp-tx", RegionBytes, Options);
            TxHandle = Nic.Device.BindDmabufTx(Region);
            Source = new IPEndPoint(ipv6 ? VethPair.DeviceIPv6 : VethPair.DeviceIPv4, SourcePort);
            Destination = new IPEndPoint(ipv6 ? VethPair.PeerIPv6 : VethPair.PeerIPv4, DestinationPort);
            Socket = new DevmemSocket(FlowKey.Udp(SourcePort), maxTxInFlight: 1024) { ZeroCopy = true };
            Socket.Connect(Nic.Device, Source, Destination);
            Receiver = NamespaceUdpReceiver.Open(Veth.PeerNamespace, Destination, receiveTimeoutMs: 5000);
            _roundTrip = new KernelUdpRoundTrip
            {
                Socket = Socket,
                Receiver = Receiver,
                Source = Source,
                BindingId = Id,
                PayloadBase = PayloadBase,
                WritePayload = (offset, size, seq) => FrameBuilder.FillSequencePayload(Region.GetSpan(offset, size), seq),
                Describe = () => $"tx {Nic.TxStats}, {Nic.TxCounters}, xsk {Nic.ReadXskStatistics(0)}",
            };
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public bool IsIPv6 { get; }

    public VethPair Veth { get; }

    public XdpNicOptions Options { get; } = null!;

    public XdpBoundNic Bound { get; } = null!;

    public XdpNic Nic => Bound.Nic;

    public DmabufRegion Region => Bound.Region;

    public DmabufBindingHandle TxHandle { get; } = null!;

    public IPEndPoint Source { get; } = null!;

    public IPEndPoint Destination { get; } = null!;

    public DevmemSocket Socket { get; } = null!;

    public Socket Receiver { get; } = null!;

    public uint Id => (uint)TxHandle.BindingId;

    /// <summary>The largest IPv4 payload on the veth (MTU 1500).</summary>
    public static int MaxPayload => 1500 - 20 - 8;

    /// <summary>The largest IPv6 payload on the veth (MTU 1500).</summary>
    public static int MaxPayloadIPv6 => 1500 - 40 - 8;

    /// <summary>
    /// Sends datagrams 0..<paramref name="count"/>-1 from the payload slots, receives and checks
    /// each on <see cref="Receiver"/> and checks every completion is in order with
    /// <paramref name="code"/>. Returns the payload bytes.
    /// </summary>
    public long RoundTrip(int count, Func<int, int> sizeOf, ZeroCopyCode code, TimeSpan timeLimit)
    {
        AssertPayloadSlotsFree();
        return _roundTrip.Run(count, sizeOf, code, timeLimit);
    }

    /// <summary>No chunk the queue holds (fill ring or tx slots) lies in the payload slots.</summary>
    public void AssertPayloadSlotsFree()
    {
        Assert.True(XdpTestKit.WaitUntil(() => Nic.TxPortOf(0) is not null), "queue 0 published no tx port");
        long posted = Nic.QueueMemory(0)!.PostedEnd();
        ulong slots = Nic.TxPortOf(0)!.SlotsEnd;
        Assert.True(posted <= PayloadBase && slots <= (ulong)PayloadBase, $"the queue holds chunks up to {posted} (rx) and {slots} (tx); payloads start at {PayloadBase}");
    }

    public void Dispose()
    {
        Socket?.Dispose();
        TxHandle?.Dispose();
        Bound?.Dispose();
        Receiver?.Dispose();
        Veth?.Dispose();
    }
}
