using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Drivers;

/// <summary>Bind, unbind and restart with traffic around them: nothing lost, nothing leaked.</summary>
public sealed class SimNicBindCycleTests
{
    [Fact]
    public void Fifty_bind_unbind_cycles_with_traffic_leave_every_pool_binding_and_page_returned()
    {
        using var arena = new PageArena(32 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("cycles", 4 << 20);
        var nic = new SimNic("cycles", new SimNicOptions { RxQueues = 2, RxRingSize = 64, PoolSize = 128, Arena = arena });
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7100));
        var pools = new PoolTracker();
        pools.Capture(nic);
        var handles = new List<DmabufBindingHandle>();
        byte[] frame = new byte[2048];
        ulong seq = 0;
        int expected = 0;
        int dmabufPackets = 0;

        for (int cycle = 0; cycle < 50; cycle++)
        {
            int[] queues = (cycle % 3) switch { 0 => [0], 1 => [1], _ => [0, 1] };
            DmabufBindingHandle h = nic.Device.BindDmabuf(region, queues);
            handles.Add(h);
            pools.Capture(nic);

            // Traffic on the bound queues (into the region) and, when one is not bound, on system pages.
            for (int i = 0; i < 10; i++)
            {
                for (int q = 0; q < 2; q++)
                {
                    InjectBounded(nic, q, frame.AsSpan(0, UdpFrame(frame, seq++, 600 + (i * 97), 7100)));
                    expected++;
                }
            }

            WaitIdle(nic);
            dmabufPackets += Drain(socket, region);
            Assert.Equal(0, socket.TokensOutstanding);

            h.Dispose();
            pools.Capture(nic);
            Assert.Empty(h.Binding.BoundQueues);
            Assert.True(h.Binding.IsFreed, $"cycle {cycle}: {h.Binding} not freed after unbind");
            Assert.Equal(h.Binding.Size, h.Binding.Avail);
            Assert.All(nic.Device.RxQueues, q => Assert.Null(q.MemoryProvider));
        }

        Assert.Equal(expected, dmabufPackets);
        Assert.Equal(expected, nic.QueueCounters(0).Packets + nic.QueueCounters(1).Packets);
        Assert.Equal(0, nic.QueueCounters(0).Drops + nic.QueueCounters(1).Drops);

        nic.Dispose();
        pools.AssertAllReturned();
        Assert.True(pools.Pools.Count >= 2 + (50 * 2 * 2));
        Assert.All(handles, h => Assert.True(h.Binding.IsFreed && h.Binding.Avail == h.Binding.Size));
        Assert.Equal(0, nic.Dma.SegmentCount);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void Restarts_under_live_traffic_lose_no_frame_and_leak_nothing()
    {
        using var arena = new PageArena(64 << 20);

        // A fresh region per round: binding the same region again while the previous binding
        // lingers (the consumer still holds its tokens) would alias the same bytes in two gen
        // pools, and the new binding's DMA would overwrite payload not yet read.
        var regions = new List<DmabufRegion>();
        var nic = new SimNic("live", new SimNicOptions { RxQueues = 2, RxRingSize = 64, PoolSize = 128, FifoSlots = 256, Arena = arena });
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7200));
        var pools = new PoolTracker();
        pools.Capture(nic);

        // The wire and the restarts pace each other through two counters, so that restarts land
        // in the middle of the traffic however the threads are scheduled: each restart step
        // waits for a fresh chunk of frames, and the injector runs at most two chunks ahead of
        // the steps.
        const int Frames = 6000;
        const int Chunk = 40;
        long injectCalls = 0;
        long accepted = 0;
        long steps = 0;
        var injector = new Thread(() =>
        {
            byte[] frame = new byte[2048];
            for (int i = 0; i < Frames; i++)
            {
                int len = UdpFrame(frame, (ulong)i, 200 + (i % 1200), 7200, ipv6: (i & 2) != 0);
                Interlocked.Increment(ref injectCalls);
                if (nic.Inject(i & 1, frame.AsSpan(0, len)))
                {
                    Interlocked.Increment(ref accepted);
                }
                else
                {
                    Thread.Yield(); // FIFO full: the frame is lost and counted as RxFifoFull
                }

                if (i % Chunk == Chunk - 1)
                {
                    long chunk = i / Chunk;

                    // No assertion on this thread: a stalled restarter fails the test's own checks.
                    TryWaitUntil(() => Interlocked.Read(ref steps) >= chunk - 2);
                }
            }
        }) { IsBackground = true, Name = "injector" };

        int received = 0;
        var seen = new HashSet<ulong>();
        using var stop = new ManualResetEventSlim(false);
        Exception? consumerError = null;
        var consumer = new Thread(() =>
        {
            try
            {
                var seqs = new List<ulong>();
                while (!stop.IsSet)
                {
                    socket.WaitReadable(5);
                    received += Drain(socket, null, seqs);
                }

                received += Drain(socket, null, seqs);
                foreach (ulong s in seqs)
                {
                    Assert.True(seen.Add(s), $"datagram {s} received twice");
                }
            }
            catch (Exception e)
            {
                consumerError = e;
            }
        }) { IsBackground = true, Name = "consumer" };

        consumer.Start();
        injector.Start();
        var handles = new List<DmabufBindingHandle>();
        int rounds = 0;
        for (int round = 0; round < 200 && (round < 6 || injector.IsAlive); round++, rounds++)
        {
            NextStep();
            if (round == 0)
            {
                Assert.True(Interlocked.Read(ref injectCalls) < Frames, "the injector finished before the first bind");
            }

            var region = DmabufRegion.CreateMemfd("live" + round, 4 << 20);
            regions.Add(region);
            DmabufBindingHandle h = nic.Device.BindDmabuf(region, round % 2 == 0 ? [0, 1] : [1]);
            handles.Add(h);
            pools.Capture(nic);
            NextStep();
            nic.Device.RestartQueue(1);
            pools.Capture(nic);
            NextStep();
            h.Dispose();
            pools.Capture(nic);
            NextStep();
            nic.Device.RestartQueue(0);
            pools.Capture(nic);
        }

        Assert.True(injector.Join(WaitLimit), "injector did not finish");
        WaitIdle(nic);
        stop.Set();
        Assert.True(consumer.Join(WaitLimit), "consumer did not finish");
        Assert.Null(consumerError);

        RxCounters q0 = nic.QueueCounters(0), q1 = nic.QueueCounters(1);
        long packets = q0.Packets + q1.Packets;
        long fifoFull = q0.DropsFor(DropReason.RxFifoFull) + q1.DropsFor(DropReason.RxFifoFull);
        Assert.Equal(Frames, injectCalls);
        Assert.Equal(Frames - accepted, fifoFull);
        Assert.Equal(Frames, Accounted(nic)); // every frame delivered or dropped with a reason
        Assert.Equal(packets, received);      // every delivered datagram reached the consumer
        Assert.Equal(packets, socket.DeliveredPackets);
        Assert.Equal(accepted, packets + q0.Drops + q1.Drops - fifoFull);
        Assert.Equal(received, seen.Count);
        Assert.True(rounds >= 6);

        nic.Dispose();
        pools.AssertAllReturned();
        Assert.All(handles, h => Assert.True(h.Binding.IsFreed && h.Binding.Avail == h.Binding.Size));
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
        regions.ForEach(r => r.Dispose());

        // One restart step: wait for the next chunk of frames on the wire (or the end of the
        // traffic), then let the injector run on.
        void NextStep()
        {
            long target = Math.Min((Interlocked.Read(ref steps) + 1) * Chunk, Frames);
            WaitUntil(() => Interlocked.Read(ref injectCalls) >= target, "the injector stalled");
            Interlocked.Increment(ref steps);
        }
    }
}
