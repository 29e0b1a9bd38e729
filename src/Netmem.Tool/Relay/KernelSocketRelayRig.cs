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
/// A relay rig whose two ends are ordinary kernel UDP sockets in a private network namespace the
/// rig made (tun, xdp): a <see cref="NamespaceUdpSender"/> sends the sequence-numbered datagrams
/// to the relay's port, and a <see cref="KernelUdpVerifier"/> on a socket bound to the far end's
/// address checks every payload byte. The device and its namespaces are the subclass's.
/// </summary>
internal abstract class KernelSocketRelayRig(long maxDatagrams) : RelayRig
{
    /// <summary>The largest payload on a 1500-byte MTU less IPv4 and UDP headers.</summary>
    public const int MaxPayload = 1472;

    private NamespaceUdpSender? _generator;
    private Socket? _farSocket;
    private KernelUdpVerifier? _farEnd;
    private byte[] _payload = [];
    private bool _disposed;

    public override int Queues => 1;

    public override int MaxFrame => 1500;

    public override long FarReceived => _farEnd?.Received ?? 0;

    public override long FarVerified => _farEnd?.Verified ?? 0;

    public override long FarMismatches => _farEnd?.Mismatches ?? 0;

    public override long FarEndBytesCopied => _farEnd?.BytesCopied ?? 0;

    public override Exception? FarEndFault => _farEnd?.Fault;

    /// <summary>The relay's own address: datagrams arrive there and leave from it.</summary>
    protected abstract IPAddress RelayAddress { get; }

    /// <summary>The namespace and address of the far end's socket.</summary>
    protected abstract (NetNamespace Namespace, IPAddress Address) FarEnd { get; }

    /// <summary>The namespace the generator sends from.</summary>
    protected abstract NetNamespace GeneratorNamespace { get; }

    public override DevmemSocket Open(int payload)
    {
        var far = new IPEndPoint(FarEnd.Address, RelayRunner.FarPort);
        _farSocket = NamespaceUdpReceiver.Open(FarEnd.Namespace, far);
        DevmemSocket relay = OpenSocket(FlowKey.Udp(RelayRunner.RelayPort));
        relay.ZeroCopy = true;
        relay.Connect(Device, new IPEndPoint(RelayAddress, RelayRunner.RelayPort), far);
        _farEnd = new KernelUdpVerifier(_farSocket, payload);
        _generator = new NamespaceUdpSender(GeneratorNamespace, new IPEndPoint(RelayAddress, RelayRunner.RelayPort), (int)Math.Min(maxDatagrams, int.MaxValue));
        _payload = new byte[payload];
        return relay;
    }

    public override bool TryGenerate(ulong seq)
    {
        FrameBuilder.FillSequencePayload(_payload, seq);
        _generator!.Send(_payload);
        return true;
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
        _farSocket?.Dispose();
        DisposeDevice();
    }

    /// <summary>Opens a socket for <paramref name="flow"/> on the driver.</summary>
    protected abstract DevmemSocket OpenSocket(FlowKey flow);

    /// <summary>Closes the driver, then deletes the namespaces the rig made (the far end and the generator are gone by then).</summary>
    protected abstract void DisposeDevice();

    /// <summary>Adds queue 0's drops by reason to <paramref name="drops"/>, those <paramref name="counted"/> accepts.</summary>
    protected static void AddQueue0Drops(RxCounters queue, Dictionary<string, long> drops, Func<DropReason, bool> counted)
    {
        foreach ((DropReason reason, long count) in queue.DropsByReason())
        {
            if (count != 0 && counted(reason))
            {
                drops[$"Queue0{reason}"] = count;
            }
        }
    }
}
