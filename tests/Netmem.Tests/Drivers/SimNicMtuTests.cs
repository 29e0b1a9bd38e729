using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Drivers;

/// <summary>SimNic enforces its MTU: an IP packet larger than the MTU is dropped and counted, not delivered.</summary>
public sealed class SimNicMtuTests : IDisposable
{
    private const ushort Port = 7710;
    private const int Mtu = 1500;
    private readonly PageArena _arena = new(16 << 20);
    private readonly SimNic _nic;
    private readonly DevmemSocket _socket;

    public SimNicMtuTests()
    {
        _nic = new SimNic("mtu", new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, Mtu = Mtu, Arena = _arena });
        _socket = _nic.OpenSocket(FlowKey.Udp(Port));
    }

    public void Dispose()
    {
        _nic.Dispose();
        Assert.Equal(_arena.TotalPages(0), _arena.FreePages(0));
        _arena.Dispose();
    }

    private RxCounters Counters => _nic.QueueCounters(0);

    /// <summary>A UDP frame whose IP packet is <paramref name="ipLength"/> bytes long.</summary>
    private static byte[] FrameOfIpLength(int ipLength, bool ipv6, ushort vlan = 0)
    {
        int payload = ipLength - (ipv6 ? 40 : 20) - 8;
        byte[] f = new byte[2048];
        return f.AsSpan(0, UdpFrame(f, 1, payload, Port, ipv6, vlan)).ToArray();
    }

    [Theory]
    [InlineData(false, (ushort)0)]
    [InlineData(true, (ushort)0)]
    [InlineData(false, (ushort)7)]
    public void An_IP_packet_one_byte_over_the_MTU_is_dropped_as_PacketTooBig(bool ipv6, ushort vlan)
    {
        InjectBounded(_nic, 0, FrameOfIpLength(Mtu + 1, ipv6, vlan));
        WaitIdle(_nic);

        Assert.Equal(0, Counters.Packets);
        Assert.Equal(1, Counters.DropsFor(DropReason.PacketTooBig));
        Assert.Equal(new Dictionary<DropReason, long> { [DropReason.PacketTooBig] = 1 }, Counters.DropsByReason());
        Assert.Equal(0, _socket.QueuedFragments);
    }

    [Theory]
    [InlineData(false, (ushort)0)]
    [InlineData(true, (ushort)0)]
    [InlineData(false, (ushort)7)]
    public void An_IP_packet_of_exactly_the_MTU_is_delivered(bool ipv6, ushort vlan)
    {
        InjectBounded(_nic, 0, FrameOfIpLength(Mtu, ipv6, vlan));
        WaitIdle(_nic);

        Assert.Equal(1, Counters.Packets);
        Assert.Equal(Mtu - (ipv6 ? 40 : 20) - 8, Counters.Bytes);
        Assert.Equal(0, Counters.Drops);
        Assert.Equal(1, Drain(_socket, null));
    }
}
