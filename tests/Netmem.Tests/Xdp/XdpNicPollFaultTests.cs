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

    private sealed class InjectedFault() : Exception("injected fault");

    [Fact]
    public void A_fault_on_a_bound_queue_drops_that_frame_only_and_its_net_iov_goes_back_to_the_pool()
    {
        Requires.AfXdp();

        using var veth = VethPair.Create();
        using var region = DmabufRegion.CreateMemfd("xdp-fault", 8 << 20);
        using var listener = new RecordingListener(EventLevel.Error, NetmemEventSource.Keywords.Lifecycle);
        var nic = new XdpNic(veth.DeviceNamespace, veth.Name);
        DmabufBindingHandle handle = nic.Device.BindDmabuf(region, [0]);
        DmabufBinding binding = handle.Binding;
        List<PagePool> pools = [.. nic.Device.PagePools];
        try
        {
            (RxCounters counters, XdpFlowReader reader, ulong peerTx, long seen) = SendWithOneFault(nic, veth, 9311);

            Assert.Equal(1, counters.PollExceptions);
            Assert.Equal(1, counters.DropsFor(DropReason.PollFault));
            Assert.Equal(Count - 1, counters.Packets);
            Assert.Equal(peerTx, (ulong)seen);
            Assert.Equal(Count - 1, reader.FromRegion);
            Assert.Empty(reader.Failures);
            EventWrittenEventArgs e = Assert.Single(listener.Where(nameof(NetmemEventSource.NapiPollException), "device", nic.Device.Name));
            Assert.Equal(typeof(InjectedFault).FullName, RecordingListener.Field(e, "exceptionType"));
        }
        finally
        {
            handle.Dispose();
            nic.Dispose();
        }

        Assert.True(XdpTestKit.WaitUntil(() => pools.All(p => p.Inflight == 0)), string.Join(", ", pools.Select(p => $"{p.Name} inflight {p.Inflight}")));
        Assert.True(binding.IsFreed);
        Assert.Equal(binding.Size, binding.Avail);
    }

    [Fact]
    public void A_fault_on_an_unbound_queue_drops_that_frame_only_and_the_rest_arrive_as_linear_data()
    {
        Requires.AfXdp();

        using var veth = VethPair.Create();
        using var listener = new RecordingListener(EventLevel.Error, NetmemEventSource.Keywords.Lifecycle);
        using var nic = new XdpNic(veth.DeviceNamespace, veth.Name);

        (RxCounters counters, XdpFlowReader reader, ulong peerTx, long seen) = SendWithOneFault(nic, veth, 9312);

        Assert.Equal(1, counters.PollExceptions);
        Assert.Equal(1, counters.DropsFor(DropReason.PollFault));
        Assert.Equal(Count - 1, counters.Packets);
        Assert.Equal(peerTx, (ulong)seen);
        Assert.Equal(Count - 1, reader.Linear);
        Assert.Empty(reader.Failures);
        Assert.Single(listener.Where(nameof(NetmemEventSource.NapiPollException), "device", nic.Device.Name));
    }

    /// <summary>
    /// Sends <see cref="Count"/> numbered datagrams to <paramref name="port"/> with the tenth
    /// delivery throwing, and receives until the other datagrams arrived. Returns, beside the
    /// queue's counters and the reader, the frames the peer sent and the driver took meanwhile
    /// (the peer's kernel may send a frame of its own, which the driver counts as a drop).
    /// </summary>
    private (RxCounters Counters, XdpFlowReader Reader, ulong PeerTx, long Seen) SendWithOneFault(XdpNic nic, VethPair veth, ushort port)
    {
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(port));
        using NamespaceUdpSender tx = veth.OpenSender(port);
        var reader = new XdpFlowReader(socket, sizeOf: null, new bool[Count]);
        RxCounters counters = nic.QueueCounters(0);
        XdpTestKit.WaitQuiet(nic);
        LinkStats64 peerBefore = veth.ReadPeerCounters();
        long seenBefore = nic.PacketsSeen;
        XskStatistics xskBefore = nic.ReadXskStatistics(0);
        int deliveries = 0;
        nic.QueueMemory(0)!.FaultInjection = () =>
        {
            if (++deliveries == 10)
            {
                throw new InjectedFault();
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
        Assert.Equal(0UL, lost);
        return (counters, reader, peerTx, seen);
    }
}
