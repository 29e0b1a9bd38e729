using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Netmem.Tests.Tun;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Drivers;

/// <summary>
/// An IPv6/UDP packet whose extension headers are longer than one header buffer (legal at a
/// 9000-byte MTU) is delivered byte for byte: its headers span several header-pool buffers.
/// </summary>
public sealed class SimNicLongHeaderTests
{
    private const ushort Port = 7700;
    private const byte HopByHop = 0;
    private const byte DestinationOptions = 60;
    private const byte Routing = 43;

    /// <summary>An Ethernet frame: IPv6, the extension headers given (each 2048 bytes, the most one can be), UDP to <see cref="Port"/>.</summary>
    private static byte[] Frame(byte[] payload, params byte[] extensionTypes) =>
        PacketBuilder.Ethernet(
            IpPacketParser.EtherTypeIPv6,
            PacketBuilder.IPv6(IpPacketParser.ProtocolUdp, PacketBuilder.Udp(4321, Port, payload), [.. extensionTypes.Select(t => (t, 2048))]));

    private static byte[] Payload(int length, ulong seq)
    {
        byte[] p = new byte[length];
        FrameBuilder.FillPayload(p, seq);
        return p;
    }

    [Theory]
    [InlineData(true, 9000, new byte[] { HopByHop, DestinationOptions, Routing })]
    [InlineData(false, 9000, new byte[] { HopByHop, DestinationOptions, Routing })]
    [InlineData(true, 20000, new byte[] { HopByHop, DestinationOptions, Routing, DestinationOptions, DestinationOptions, DestinationOptions, DestinationOptions, DestinationOptions })]
    public void Headers_longer_than_a_header_buffer_are_consumed_and_the_payload_delivered(bool headerDataSplit, int mtu, byte[] extensions)
    {
        using var arena = new PageArena(32 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("longhdr", 2 << 20);
        var nic = new SimNic("longhdr", new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, Mtu = mtu, HeaderDataSplit = headerDataSplit, Arena = arena });
        var pools = new PoolTracker();
        DmabufBindingHandle? handle = headerDataSplit ? nic.Device.BindDmabuf(region, [0]) : null;
        pools.Capture(nic);
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port));
        byte[] payload = Payload(2000, 42);
        byte[] frame = Frame(payload, extensions);
        int headers = frame.Length - 14 - payload.Length;
        Assert.True(headers > nic.QueueMemory(0)!.HeaderPool.NetmemSize || !headerDataSplit, $"headers of {headers} bytes fit one header buffer");
        Assert.True(frame.Length - 14 <= mtu);

        InjectBounded(nic, 0, frame);
        WaitIdle(nic);

        RxCounters c = nic.QueueCounters(0);
        Assert.Equal(1, c.Packets);
        Assert.Equal(payload.Length, c.Bytes);
        Assert.Equal(0, c.Drops);
        Assert.Equal(0, c.PollExceptions);
        var seqs = new List<ulong>();
        Assert.Equal(1, Drain(socket, headerDataSplit ? region : null, seqs));
        Assert.Equal([42ul], seqs);

        handle?.Dispose();
        pools.Capture(nic);
        nic.Dispose();
        pools.AssertAllReturned();
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }
}
