using Netmem.Devmem;
using Netmem.Drivers.Tun;
using Netmem.Drivers.Xdp;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>
/// XdpNic's internal hold of a queue's poll loop (what the receive-side benchmarks use): held,
/// the kernel keeps placing frames in the rx ring and the driver takes none; resumed, every one
/// is delivered.
/// </summary>
public sealed class XdpNicHoldPollingTests
{
    [Fact]
    public void A_held_poll_loop_leaves_frames_in_the_rx_ring_and_delivers_every_one_when_resumed()
    {
        Requires.AfXdp();

        const int Count = 500;
        using var veth = VethPair.Create();
        using var bound = new XdpBoundNic(veth, "xdp-hold", 16 << 20);
        XdpNic nic = bound.Nic;
        using DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(9331));
        using NamespaceUdpSender tx = veth.OpenSender(9331);
        var reader = new XdpFlowReader(socket, seq => XdpTestKit.SizeOf(seq, 1400));

        // The path is live (socket in the map) once one datagram made it through.
        Assert.True(XdpTestKit.WaitUntil(() =>
        {
            tx.SendPattern(reader.Received, 1, seq => XdpTestKit.SizeOf(seq, 1400));
            return reader.ReceiveUntil(reader.Received + 1, idleMs: 100);
        }));
        XdpTestKit.WaitQuiet(nic);
        int first = reader.Received;
        XskStatistics xskBefore = nic.ReadXskStatistics(0);

        nic.HoldPolling(0);
        long deliveredBefore = nic.QueueCounters(0).Packets;
        tx.SendPattern(first, Count, seq => XdpTestKit.SizeOf(seq, 1400));

        Assert.True(XdpTestKit.WaitUntil(() => nic.QueueRxQueued(0) >= Count), $"rx ring holds {nic.QueueRxQueued(0)} of {Count}; xsk {nic.ReadXskStatistics(0)}");
        Assert.Equal(deliveredBefore, nic.QueueCounters(0).Packets);
        Assert.False(socket.WaitReadable(0));
        Assert.Equal(xskBefore.RxLost, nic.ReadXskStatistics(0).RxLost);

        nic.ResumePolling(0);

        Assert.True(reader.ReceiveUntil(first + Count), $"received {reader.Received - first} of {Count} after the resume");
        Assert.Empty(reader.Failures);
        Assert.Equal(first + Count, reader.FromRegion);
        Assert.True(XdpTestKit.WaitUntil(() => nic.QueueRxQueued(0) == 0));
        Assert.Equal(xskBefore.RxLost, nic.ReadXskStatistics(0).RxLost);
        Assert.Equal(0, nic.QueueCounters(0).PollExceptions);
    }
}
