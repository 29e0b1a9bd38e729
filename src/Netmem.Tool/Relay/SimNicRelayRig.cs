using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Netmem.Tool.Demo;

namespace Netmem.Tool.Relay;

/// <summary>
/// The relay on SimNic (no setup, no root): the generator injects sequence-numbered datagrams
/// into queue 0 (bound for devmem) for the relay's port; the relay sends them on to the far
/// end's port; the NIC's wire loops them into queue 1, which stays on system pages, so the far
/// end's socket reads them from readable memory and a <see cref="FlowConsumer"/> verifies them.
/// </summary>
internal sealed class SimNicRelayRig : RelayRig
{
    private const uint GeneratorAddress = 0xC0000201; // 192.0.2.1
    private const uint RelayAddress = 0xC0000264;     // 192.0.2.100
    private const uint FarAddress = 0xC00002C8;       // 192.0.2.200
    private const ushort GeneratorPort = 40000;

    private readonly SimNic _nic = new("relay0", new SimNicOptions { RxQueues = 2, Mtu = 9000 });
    private byte[] _frame = [];
    private FlowConsumer? _farEnd;

    public override string Driver => "simnic";

    public override int Queues => 2;

    public override NetDevice Device => _nic.Device;

    public override int MaxFrame => _nic.Options.MaxFrame;

    public override long Delivered => _nic.QueueCounters(1).Packets;

    public override long FarReceived => _farEnd?.Received ?? 0;

    public override long FarVerified => _farEnd?.Verified ?? 0;

    public override long FarMismatches => _farEnd?.Mismatches ?? 0;

    public override long FarEndBytesCopied => _farEnd?.LinearBytes ?? 0;

    public override long DeviceBytes => _nic.QueueCounters(0).Bytes + _nic.TxStats.Bytes + _nic.QueueCounters(1).Bytes;

    public override string DeviceBytesMovedBy => "DMA; simulated by the CPU on SimNic";

    public override TxQueueStats TxStats => _nic.TxStats;

    public override DevmemSocket Open(int payload)
    {
        // The wire takes what the NIC sends to queue 1, which stays on system pages.
        _nic.LoopTxTo(_nic, 1);
        DevmemSocket relay = _nic.OpenSocket(FlowKey.Udp(RelayRunner.RelayPort));
        relay.ZeroCopy = true;
        relay.Connect(_nic.Device, Endpoint(RelayAddress, RelayRunner.RelayPort), Endpoint(FarAddress, RelayRunner.FarPort));
        _farEnd = new FlowConsumer(_nic.OpenSocket(FlowKey.Udp(RelayRunner.FarPort)), payload, corruptOnce: false);
        _frame = new byte[FrameBuilder.UdpV4Overhead + payload];
        FrameBuilder.BuildUdp(_frame, ipv6: false, GeneratorAddress, RelayAddress, GeneratorPort, RelayRunner.RelayPort, new byte[payload]);
        return relay;
    }

    public override bool TryGenerate(ulong seq)
    {
        if (_nic.FreeFifoSlots(0) == 0)
        {
            return false;
        }

        FrameBuilder.FillSequencePayload(_frame.AsSpan(FrameBuilder.UdpV4Overhead), seq);
        _nic.Inject(0, _frame);
        return true;
    }

    public override long QueueDrops() => _nic.QueueCounters(0).Drops + _nic.QueueCounters(1).Drops;

    public override void AddQueueDrops(Dictionary<string, long> drops)
    {
        for (int q = 0; q < 2; q++)
        {
            foreach ((DropReason reason, long count) in RxCounters.SumDropsByReason([_nic.QueueCounters(q)]))
            {
                if (count != 0)
                {
                    drops[$"Queue{q}{reason}"] = count;
                }
            }
        }
    }

    public override void Quiesce()
    {
        _nic.WaitIdle(TimeSpan.FromSeconds(5));
        _farEnd?.Stop();
    }

    public override void Dispose()
    {
        _farEnd?.Stop();
        _nic.Dispose();
    }

    private static IPEndPoint Endpoint(uint address, ushort port) =>
        new(new IPAddress([(byte)(address >> 24), (byte)(address >> 16), (byte)(address >> 8), (byte)address]), port);
}
