using System.Diagnostics.Tracing;
using Netmem.Devmem;
using Netmem.Diagnostics;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Netmem.Tests.Diagnostics;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Drivers;

/// <summary>
/// No exception escapes a poll thread: one thrown while a datagram is in hand is caught, counted,
/// traced, the datagram's pages go back, and the queue keeps delivering.
/// </summary>
[Collection(DiagnosticsCollection.Name)]
public sealed class SimNicPollFaultTests
{
    private const ushort Port = 7720;

    /// <summary>A fault the test throws from inside a receive step.</summary>
    private sealed class InjectedFault() : Exception("injected fault");

    [Fact]
    public void A_fault_with_a_datagram_in_hand_drops_only_that_frame_and_the_queue_keeps_delivering()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("pollfault", 2 << 20);
        using var listener = new RecordingListener(EventLevel.Error, NetmemEventSource.Keywords.Lifecycle);
        var options = new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, FifoSlots = 64, Arena = arena };
        var nic = new SimNic("pollfault", options);
        var pools = new PoolTracker();
        DmabufBindingHandle handle = nic.Device.BindDmabuf(region, [0]);
        pools.Capture(nic);
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port));
        QueueMemory mem = nic.QueueMemory(0)!;
        int faultsLeft = 1;
        int fragmentsInHandAtFault = 0;
        mem.FaultInjection = () =>
        {
            if (Interlocked.Exchange(ref faultsLeft, 0) == 1)
            {
                fragmentsInHandAtFault = mem.InHand.Count;
                throw new InjectedFault();
            }
        };

        // 9000-byte payloads span three net_iovs: the faulting datagram has pages in hand.
        byte[] frame = new byte[9100];
        for (ulong seq = 0; seq < 4; seq++)
        {
            InjectBounded(nic, 0, frame.AsSpan(0, UdpFrame(frame, seq, 8900, Port)));
        }

        WaitIdle(nic);

        RxCounters c = nic.QueueCounters(0);
        Assert.Equal(3, fragmentsInHandAtFault);
        Assert.Equal(1, c.PollExceptions);
        Assert.Equal(new Dictionary<DropReason, long> { [DropReason.PollFault] = 1 }, c.DropsByReason());
        Assert.Equal(3, c.Packets);
        Assert.Equal(4, Accounted(nic));
        Assert.Equal(options.FifoSlots, nic.FreeFifoSlots(0));
        var seqs = new List<ulong>();
        Assert.Equal(3, Drain(socket, region, seqs));
        Assert.Equal([1ul, 2ul, 3ul], seqs);

        EventWrittenEventArgs e = Assert.Single(listener.Where(nameof(NetmemEventSource.NapiPollException), "device", nic.Device.Name));
        Assert.Equal(NetmemEventSource.NapiPollExceptionId, e.EventId);
        Assert.Equal(EventLevel.Error, e.Level);
        Assert.Equal(nic.Device.Ifindex, RecordingListener.Field(e, "ifindex"));
        Assert.Equal(0, RecordingListener.Field(e, "queue"));
        Assert.Equal(1L, RecordingListener.Field(e, "exceptions"));
        Assert.Equal(typeof(InjectedFault).FullName, RecordingListener.Field(e, "exceptionType"));
        Assert.Equal("injected fault", RecordingListener.Field(e, "message"));

        // Conservation: the three net_iovs the fault held came back; after teardown every page
        // and every net_iov is home.
        mem.FaultInjection = null;
        handle.Dispose();
        pools.Capture(nic);
        nic.Dispose();
        pools.AssertAllReturned();
        Assert.True(handle.Binding.IsFreed);
        Assert.Equal(handle.Binding.Size, handle.Binding.Avail);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void Every_frame_faulting_is_dropped_and_counted_and_the_loop_survives_to_deliver_after()
    {
        using var arena = new PageArena(16 << 20);
        var nic = new SimNic("pollfault2", new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, HeaderDataSplit = false, Arena = arena });
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port));
        QueueMemory mem = nic.QueueMemory(0)!;
        bool failing = true;
        mem.FaultInjection = () =>
        {
            if (Volatile.Read(ref failing))
            {
                throw new InjectedFault();
            }
        };

        byte[] frame = new byte[2048];
        for (ulong seq = 0; seq < 40; seq++)
        {
            InjectBounded(nic, 0, frame.AsSpan(0, UdpFrame(frame, seq, 1000, Port)));
        }

        WaitIdle(nic);
        Volatile.Write(ref failing, false);
        InjectBounded(nic, 0, frame.AsSpan(0, UdpFrame(frame, 40, 1000, Port)));
        WaitIdle(nic);

        RxCounters c = nic.QueueCounters(0);
        Assert.Equal(40, c.PollExceptions);
        Assert.Equal(40, c.DropsFor(DropReason.PollFault));
        Assert.Equal(1, c.Packets);

        // Every burst ended on a faulting frame: each still gave its FIFO slots back.
        Assert.Equal(new SimNicOptions().FifoSlots, nic.FreeFifoSlots(0));
        var seqs = new List<ulong>();
        Assert.Equal(1, Drain(socket, null, seqs));
        Assert.Equal([40ul], seqs);
        PagePool header = mem.HeaderPool;
        nic.Dispose();
        Assert.True(header.IsFreed, $"{header} not freed, inflight {header.Inflight}");
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }
}
