using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Xdp;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Tool.Relay;

/// <summary>
/// The relay on an XdpNic (root): two private network namespaces joined by a veth pair
/// (<see cref="VethPair"/>, as <c>netmem xdp</c> makes them), the XdpNic on the device end. A
/// kernel UDP socket in the peer namespace sends sequence-numbered datagrams to the relay's port
/// on the device end's address; the XDP program redirects them to queue 0's AF_XDP socket, whose
/// UMEM is the bound region, so they land in the region (header split). The relay sends each
/// from the same region fragments back out of the device end, through the socket's tx ring from
/// the same UMEM, to the peer's address and the far end's port, where a second kernel UDP socket
/// verifies every payload byte.
/// </summary>
/// <remarks>
/// With multi-buffer (<c>XDP_USE_SG</c>) the kernel reads each payload from its rx chunk; where
/// the kernel refuses it XdpNic copies headers and payload into a reserved frame, and those bytes
/// are reported as the driver's copy (<see cref="DriverBytesCopied"/>). Datagrams the kernel's
/// socket dropped before the driver saw them (its rx ring full, no fill-ring chunk) are counted
/// as drops. The peer's kernel sends frames of its own to the device end too (ICMPv6: MLD reports
/// for its IPv6 address); the XDP program redirects them to the socket like any frame and the
/// driver drops them as no UDP datagram. They are not the generator's, so they are not counted
/// among the relay's drops (<see cref="IsGenerated"/>). Disposing deletes both namespaces, and
/// the veth pair with them.
/// </remarks>
internal sealed class XdpRelayRig : KernelSocketRelayRig
{
    /// <summary>The prefix of the namespaces a run creates (and removes).</summary>
    public const string NamespacePrefix = "netmem-xdprelay";

    private readonly VethPair _veth;
    private readonly XdpNic _nic;
    private readonly XskStatistics _xskBefore;

    /// <param name="maxDatagrams">The most datagrams the generator sends.</param>
    /// <param name="txMultiBuffer">Ask for <c>XDP_USE_SG</c> (false: the driver's copy fallback, as where the kernel refuses it).</param>
    public XdpRelayRig(long maxDatagrams, bool txMultiBuffer = true)
        : base(maxDatagrams)
    {
        _veth = VethPair.Create(NamespacePrefix, name: "nmxdprl0", peerName: "nmxdprl0p");
        try
        {
            _nic = new XdpNic(_veth.DeviceNamespace, _veth.Name, new XdpNicOptions { TxDestinationMac = _veth.PeerMacAddress.ToArray(), TxMultiBuffer = txMultiBuffer });
            _xskBefore = _nic.ReadXskStatistics(0);
        }
        catch
        {
            _veth.Dispose();
            throw;
        }
    }

    public override string Driver => "xdp";

    public override NetDevice Device => _nic.Device;

    public override long Delivered => _nic.TxStats.Completed;

    public override long DriverBytesCopied => _nic.TxCounters.CopiedBytes;

    public override long DeviceBytes => _nic.QueueCounters(0).Bytes + _nic.TxStats.Bytes;

    public override string DeviceBytesMovedBy => _nic.QueueMode(0) == XskMode.ZeroCopy
        ? "DMA by the NIC (AF_XDP zero-copy mode)"
        : "the kernel, copying frames into and out of the UMEM (AF_XDP copy mode)";

    public override TxQueueStats TxStats => _nic.TxStats;

    public override string DevicePath
    {
        get
        {
            string xsk = _nic.QueueMode(0) == XskMode.ZeroCopy ? "zero-copy" : "copy";
            string tx = _nic.QueueTxMultiBuffer(0) switch
            {
                true => "tx multi-buffer (XDP_USE_SG: payloads sent from their rx chunks)",
                false => "tx without multi-buffer (no XDP_USE_SG: the driver copies each payload into a frame)",
                null => "no tx ring",
            };
            return $"{_nic.InterfaceName} (veth), AF_XDP {xsk} mode, {(_nic.XdpMode == XdpAttachMode.Driver ? "driver" : "generic")} XDP, {tx}";
        }
    }

    protected override IPAddress RelayAddress => VethPair.DeviceIPv4;

    protected override (NetNamespace Namespace, IPAddress Address) FarEnd => (_veth.PeerNamespace, VethPair.PeerIPv4);

    protected override NetNamespace GeneratorNamespace => _veth.PeerNamespace;

    public override long QueueDrops()
    {
        RxCounters q = _nic.QueueCounters(0);
        return q.Drops - q.DropsFor(DropReason.UnsupportedProtocol) - q.DropsFor(DropReason.UnknownEtherType) + (long)SocketLost().RxLost;
    }

    public override void AddQueueDrops(Dictionary<string, long> drops)
    {
        AddQueue0Drops(_nic.QueueCounters(0), drops, IsGenerated);
        XskStatistics lost = SocketLost();
        if (lost.RxDropped != 0)
        {
            drops["XskRxDropped"] = (long)lost.RxDropped;
        }

        if (lost.RxRingFull != 0)
        {
            drops["XskRxRingFull"] = (long)lost.RxRingFull;
        }
    }

    protected override DevmemSocket OpenSocket(FlowKey flow) => _nic.OpenSocket(flow);

    protected override void DisposeDevice()
    {
        _nic.Dispose();
        _veth.Dispose();
    }

    /// <summary>False for the drops of frames that are no UDP datagram, which the generator never sends (the peer kernel's ICMPv6, ARP).</summary>
    private static bool IsGenerated(DropReason reason) => reason is not (DropReason.UnsupportedProtocol or DropReason.UnknownEtherType);

    /// <summary>What queue 0's AF_XDP socket lost since the rig started.</summary>
    private XskStatistics SocketLost()
    {
        XskStatistics now = _nic.ReadXskStatistics(0);
        return new XskStatistics(now.RxDropped - _xskBefore.RxDropped, 0, 0, now.RxRingFull - _xskBefore.RxRingFull, 0, 0);
    }
}
