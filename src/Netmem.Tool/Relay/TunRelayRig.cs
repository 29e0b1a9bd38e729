using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
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
internal sealed class TunRelayRig : RelayRig
{
    /// <summary>The largest payload: the TUN's 1500-byte MTU less IPv4 and UDP headers.</summary>
    public const int MaxPayload = 1472;

    private readonly NetNamespace _ns;
    private readonly TunNic _nic;
    private readonly long _maxDatagrams;
    private NamespaceUdpSender? _generator;
    private Socket? _farSocket;
    private KernelUdpVerifier? _farEnd;
    private byte[] _payload = [];
    private bool _disposed;

    public TunRelayRig(long maxDatagrams)
    {
        _maxDatagrams = maxDatagrams;
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

    public override int Queues => 1;

    public override NetDevice Device => _nic.Device;

    public override int MaxFrame => 1500;

    public override long Delivered => _nic.TxCounters.Writes;

    public override long FarReceived => _farEnd?.Received ?? 0;

    public override long FarVerified => _farEnd?.Verified ?? 0;

    public override long FarMismatches => _farEnd?.Mismatches ?? 0;

    public override long FarEndBytesCopied => _farEnd?.BytesCopied ?? 0;

    public override long DeviceBytes => _nic.QueueCounters(0).Bytes + _nic.TxStats.Bytes;

    public override TxQueueStats TxStats => _nic.TxStats;

    public override Exception? FarEndFault => _farEnd?.Fault;

    public override DevmemSocket Open(int payload)
    {
        var far = new IPEndPoint(TunDevice.LocalIPv4, RelayRunner.FarPort);
        _farSocket = NamespaceUdpReceiver.Open(_ns, far);
        DevmemSocket relay = _nic.OpenSocket(FlowKey.Udp(RelayRunner.RelayPort));
        relay.ZeroCopy = true;
        relay.Connect(_nic.Device, new IPEndPoint(TunDevice.PeerIPv4, RelayRunner.RelayPort), far);
        _farEnd = new KernelUdpVerifier(_farSocket, payload);
        _generator = new NamespaceUdpSender(_ns, new IPEndPoint(TunDevice.PeerIPv4, RelayRunner.RelayPort), (int)Math.Min(_maxDatagrams, int.MaxValue));
        _payload = new byte[payload];
        return relay;
    }

    public override bool TryGenerate(ulong seq)
    {
        FrameBuilder.FillSequencePayload(_payload, seq);
        _generator!.Send(_payload);
        return true;
    }

    public override long QueueDrops() => _nic.QueueCounters(0).Drops;

    public override void AddQueueDrops(Dictionary<string, long> drops)
    {
        foreach ((DropReason reason, long count) in RxCounters.SumDropsByReason([_nic.QueueCounters(0)]))
        {
            if (count != 0)
            {
                drops[$"Queue0{reason}"] = count;
            }
        }
    }

    public override void Quiesce() => _farEnd?.Stop();

    public override void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _farEnd?.Stop();
        _generator?.Dispose();
        _nic.Dispose();
        _farSocket?.Dispose();
        _ns.Dispose();
    }
}
