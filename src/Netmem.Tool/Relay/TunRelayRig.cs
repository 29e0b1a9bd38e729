using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Tool.Relay;

/// <summary>
/// The relay on a TunNic in a private network namespace (root): a kernel UDP socket of the
/// namespace sends sequence-numbered datagrams to the relay's port on the TUN's peer address, so
/// the kernel writes them into the TUN and TunNic reads them into the bound region (header
/// split); the relay sends each from the same region fragments, from the peer address to the
/// namespace's own TUN address and the far end's port; the kernel receives what TunNic writes
/// and a second kernel UDP socket, bound there, verifies every payload byte.
/// </summary>
internal sealed class TunRelayRig : KernelSocketRelayRig
{
    private readonly NetNamespace _ns;
    private readonly TunNic _nic;

    public TunRelayRig(long maxDatagrams)
        : base(maxDatagrams)
    {
        _ns = NetNamespace.Create("netmem-relay");
        try
        {
            _nic = new TunNic(_ns, new TunNicOptions { Configuration = new TunConfiguration { IPv6LinkLocal = false } });
        }
        catch
        {
            _ns.Dispose();
            throw;
        }
    }

    public override string Driver => "tun";

    public override NetDevice Device => _nic.Device;

    public override long Delivered => _nic.TxCounters.Writes;

    public override long DeviceBytes => _nic.QueueCounters(0).Bytes + _nic.TxStats.Bytes;

    public override string DeviceBytesMovedBy => "the kernel, copying into the region on read and out of it on writev";

    public override TxQueueStats TxStats => _nic.TxStats;

    protected override IPAddress RelayAddress => TunDevice.PeerIPv4;

    protected override (NetNamespace Namespace, IPAddress Address) FarEnd => (_ns, TunDevice.LocalIPv4);

    protected override NetNamespace GeneratorNamespace => _ns;

    public override long QueueDrops() => _nic.QueueCounters(0).Drops;

    public override void AddQueueDrops(Dictionary<string, long> drops) => AddQueue0Drops(_nic.QueueCounters(0), drops, _ => true);

    protected override DevmemSocket OpenSocket(FlowKey flow) => _nic.OpenSocket(flow);

    protected override void DisposeDevice()
    {
        _nic.Dispose();
        _ns.Dispose();
    }
}
