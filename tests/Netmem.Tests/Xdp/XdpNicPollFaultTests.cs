using System.Diagnostics.Tracing;
using Netmem.Devmem;
using Netmem.Diagnostics;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Drivers.Xdp;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Diagnostics;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>
/// A fault in XdpNic's receive step is caught by the shared poll loop, counted and traced: the
/// frame in hand is dropped as <see cref="DropReason.PollFault"/>, its memory goes back, and the
/// rest of the burst and the next frames are delivered. Needs root.
/// </summary>
[Collection(DiagnosticsCollection.Name)]
public sealed class XdpNicPollFaultTests(ITestOutputHelper output)
{
    private const int Count = 200;

    [Fact]
    public void A_fault_on_a_bound_queue_drops_that_frame_only_and_its_net_iov_goes_back_to_the_pool()
    {
        Requires.AfXdp();

        using var veth = VethPair.Create();
        using var bound = new XdpBoundNic(veth, "xdp-fault", 8 << 20);

        XdpFlowReader reader = ReceiveWithOneFault(bound.Nic, veth, 9311);

        Assert.Equal(Count - 1, reader.FromRegion);
        bound.TearDownAndAssertNothingLeft();
    }

    [Fact]
    public void A_fault_on_an_unbound_queue_drops_that_frame_only_and_the_rest_arrive_as_linear_data()
    {
        Requires.AfXdp();

        using var veth = VethPair.Create();
        using var nic = new XdpNic(veth.DeviceNamespace, veth.Name);

        XdpFlowReader reader = ReceiveWithOneFault(nic, veth, 9312);

        Assert.Equal(Count - 1, reader.Linear);
    }

    /// <summary>
    /// Sends <see cref="Count"/> numbered datagrams to <paramref name="port"/> with the tenth
    /// delivery throwing, receives the others, and checks what every fault must leave behind: one
    /// caught exception, traced with its type; one <see cref="DropReason.PollFault"/> drop; every
    /// other datagram delivered and intact; every frame the peer sent taken by the driver (the
    /// peer's kernel may send a frame of its own, which the driver counts as a drop).
    /// </summary>
    private XdpFlowReader ReceiveWithOneFault(XdpNic nic, VethPair veth, ushort port)
    {
        using var listener = new RecordingListener(EventLevel.Error, NetmemEventSource.Keywords.Lifecycle);
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(port));
        using NamespaceUdpSender tx = veth.OpenSender(port);
        var reader = new XdpFlowReader(socket, sizeOf: null, new bool[Count]);
        RxCounters counters = nic.QueueCounters(0);
        XdpTestKit.WaitQuiet(nic);
        LinkStats64 peerBefore = veth.ReadPeerCounters();
        long seenBefore = nic.PacketsSeen;
        XskStatistics xskBefore = nic.ReadXskStatistics(0);
        int deliveries = 0;
        var fault = new InvalidOperationException("injected fault");
        nic.QueueMemory(0)!.FaultInjection = () =>
        {
            if (++deliveries == 10)
            {
                throw fault;
            }
        };

        byte[] payload = new byte[600];
        for (int seq = 0; seq < Count; seq++)
        {
            FrameBuilder.FillSequencePayload(payload, (ulong)seq);
            tx.Send(payload);
        }

        Assert.True(reader.ReceiveUntil(Count - 1), $"received {reader.Received} of {Count - 1}");
        XdpTestKit.WaitQuiet(nic);
        (ulong peerTx, long seen, ulong lost) = XdpTestKit.Since(veth, nic, peerBefore, seenBefore, xskBefore);
        output.WriteLine($"{nic}: delivered {counters.Packets}, drops {string.Join(", ", counters.DropsByReason())}, peer tx {peerTx}, driver took {seen}, xsk lost {lost}");

        Assert.Equal(1, counters.PollExceptions);
        Assert.Equal(1, counters.DropsFor(DropReason.PollFault));
        Assert.Equal(Count - 1, counters.Packets);
        Assert.Empty(reader.Failures);
        Assert.Equal(peerTx, (ulong)seen);
        Assert.Equal(0UL, lost);
        EventWrittenEventArgs e = Assert.Single(listener.Where(nameof(NetmemEventSource.NapiPollException), "device", nic.Device.Name));
        Assert.Equal(fault.Message, RecordingListener.Field(e, "message"));
        return reader;
    }
}
