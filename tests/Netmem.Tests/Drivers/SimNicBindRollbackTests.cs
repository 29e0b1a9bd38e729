using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.SimNic;
using Netmem.Native;
using Netmem.Net;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Drivers;

/// <summary>
/// bind-rx on a driver that cannot take unreadable memory, or whose queue ops fail: EOPNOTSUPP
/// (or the driver's error), every queue back on system pages, still receiving.
/// </summary>
public sealed class SimNicBindRollbackTests
{
    /// <summary>SimNic's ops, except queue <paramref name="queueWithoutFlag"/>'s payload pool lacks AllowUnreadableNetmem.</summary>
    private sealed class PerQueueFlagOps(SimNic nic, int queueWithoutFlag) : IQueueManagementOps
    {
        public object MemAlloc(NetDevice device, int queueIndex) => queueIndex == queueWithoutFlag
            ? QueueMemory.Allocate(device, queueIndex, nic.Options.RxRingSize, nic.Options.PoolSize, payloadAllowsUnreadable: false, nic.Options.MaxFrame, nic.Options.Arena)
            : nic.MemAlloc(device, queueIndex);

        public void MemFree(NetDevice device, object queueMemory) => nic.MemFree(device, queueMemory);

        public void Start(NetDevice device, object queueMemory, int queueIndex) => nic.Start(device, queueMemory, queueIndex);

        public object Stop(NetDevice device, int queueIndex) => nic.Stop(device, queueIndex);
    }

    /// <summary>SimNic's ops with one-shot failures of MemAlloc or Start.</summary>
    private sealed class FaultyOps(SimNic nic) : IQueueManagementOps
    {
        public bool FailNextAlloc { get; set; }

        public bool FailNextStart { get; set; }

        public List<string> Log { get; } = [];

        public object MemAlloc(NetDevice device, int queueIndex)
        {
            if (FailNextAlloc)
            {
                FailNextAlloc = false;
                Log.Add("alloc failed");
                throw new NetmemException(Errno.ENOMEM, "injected: no memory for the queue");
            }

            Log.Add("alloc");
            return nic.MemAlloc(device, queueIndex);
        }

        public void MemFree(NetDevice device, object queueMemory)
        {
            Log.Add("free");
            nic.MemFree(device, queueMemory);
        }

        public void Start(NetDevice device, object queueMemory, int queueIndex)
        {
            if (FailNextStart)
            {
                FailNextStart = false;
                Log.Add("start failed");
                throw new NetmemException(Errno.EIO, "injected: queue did not start");
            }

            Log.Add("start");
            nic.Start(device, queueMemory, queueIndex);
        }

        public object Stop(NetDevice device, int queueIndex)
        {
            Log.Add("stop");
            return nic.Stop(device, queueIndex);
        }
    }

    private static SimNic NewNic(string name, PageArena arena, bool allowUnreadable = true) =>
        new(name, new SimNicOptions { RxQueues = 2, RxRingSize = 32, PoolSize = 64, PayloadPoolAllowsUnreadable = allowUnreadable, Arena = arena });

    /// <summary>Injects <paramref name="count"/> frames on <paramref name="queue"/> and checks each arrives as Linear data with the injected bytes.</summary>
    private static void AssertReceivesOnSystemPages(SimNic nic, DevmemSocket socket, int queue, int count)
    {
        byte[] frame = new byte[2048];
        long before = nic.QueueCounters(queue).Packets;
        for (int i = 0; i < count; i++)
        {
            InjectBounded(nic, queue, frame.AsSpan(0, UdpFrame(frame, (ulong)i, 700, socket.Flow.DstPort)));
        }

        WaitIdle(nic);
        Assert.Equal(before + count, nic.QueueCounters(queue).Packets);
        var cmsgs = new DmabufCmsg[count + 1];
        byte[] linear = new byte[count * 700];
        int n = socket.Receive(cmsgs, linear, out int linearBytes);
        Assert.Equal(count, n);
        Assert.Equal(count * 700, linearBytes);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(DevmemCmsgType.Linear, cmsgs[i].Type);
            Assert.Equal(0u, cmsgs[i].FragToken);
            Assert.True(cmsgs[i].IsEndOfPacket);
            Assert.True(Netmem.Drivers.Parsing.FrameBuilder.VerifyPayload(linear.AsSpan(cmsgs[i].LinearOffset, (int)cmsgs[i].FragSize), out ulong seq));
            Assert.Equal((ulong)i, seq);
        }

        Assert.Equal(0, socket.TokensOutstanding);
    }

    private static void AssertNoProvider(SimNic nic)
    {
        Assert.All(nic.Device.RxQueues, q => Assert.Null(q.MemoryProvider));
        for (int q = 0; q < nic.Options.RxQueues; q++)
        {
            Assert.Null(nic.QueueMemory(q)!.PayloadPool.MemoryProvider);
        }

        Assert.Equal(0, nic.Dma.SegmentCount); // the refused binding was freed and unmapped
    }

    [Fact]
    public void Payload_pool_without_the_flag_fails_EOPNOTSUPP_and_the_queue_keeps_receiving_on_system_pages()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("rb-noflag", 1 << 20);
        var nic = NewNic("rb-noflag", arena, allowUnreadable: false);
        var pools = new PoolTracker();
        pools.Capture(nic);

        NetmemException e = Assert.Throws<NetmemException>(() => nic.Device.BindDmabuf(region, [0]));

        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.StartsWith("rb-noflag: no page pool on queue 0 took its memory provider (dmabuf binding ", e.Reason, StringComparison.Ordinal);
        Assert.EndsWith("the driver cannot take unreadable netmem", e.Reason, StringComparison.Ordinal);
        AssertNoProvider(nic);
        pools.Capture(nic);

        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7001));
        AssertReceivesOnSystemPages(nic, socket, 0, 8);

        nic.Dispose();
        pools.AssertAllReturned();
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void Second_queue_without_the_flag_rolls_back_the_first_queue_too()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("rb-mixed", 1 << 20);
        var nic = NewNic("rb-mixed", arena);
        var pools = new PoolTracker();
        pools.Capture(nic);
        nic.Device.QueueOps = new PerQueueFlagOps(nic, queueWithoutFlag: 1);

        NetmemException e = Assert.Throws<NetmemException>(() => nic.Device.BindDmabuf(region, [0, 1]));

        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Contains("no page pool on queue 1 took its memory provider", e.Reason, StringComparison.Ordinal);
        AssertNoProvider(nic); // queue 0 had been bound and restarted; it is back on system pages
        pools.Capture(nic);

        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7002));
        AssertReceivesOnSystemPages(nic, socket, 0, 6);
        AssertReceivesOnSystemPages(nic, socket, 1, 6);

        nic.Dispose();
        pools.AssertAllReturned();
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void Start_failure_during_bind_rolls_back_to_the_old_memory_and_the_queue_keeps_receiving()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("rb-start", 1 << 20);
        var nic = NewNic("rb-start", arena);
        var pools = new PoolTracker();
        pools.Capture(nic);
        QueueMemory oldMem = nic.QueueMemory(0)!;
        var ops = new FaultyOps(nic) { FailNextStart = true };
        nic.Device.QueueOps = ops;

        NetmemException e = Assert.Throws<NetmemException>(() => nic.Device.BindDmabuf(region, [0]));

        Assert.Equal(Errno.EIO, e.Errno);
        Assert.Equal(["alloc", "stop", "start failed", "start", "free"], ops.Log);
        Assert.Same(oldMem, nic.QueueMemory(0)); // running on the memory it had before
        AssertNoProvider(nic);
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7003));
        AssertReceivesOnSystemPages(nic, socket, 0, 8);

        nic.Dispose();
        pools.AssertAllReturned();
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void Mem_alloc_failure_during_restart_keeps_the_bound_queue_on_its_region()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("rb-alloc", 1 << 20);
        var nic = NewNic("rb-alloc", arena);
        var pools = new PoolTracker();
        DmabufBindingHandle h = nic.Device.BindDmabuf(region, [1]);
        pools.Capture(nic);
        QueueMemory boundMem = nic.QueueMemory(1)!;
        var ops = new FaultyOps(nic) { FailNextAlloc = true };
        nic.Device.QueueOps = ops;

        NetmemException e = Assert.Throws<NetmemException>(() => nic.Device.RestartQueue(1));

        Assert.Equal(Errno.ENOMEM, e.Errno);
        Assert.Equal(["alloc failed"], ops.Log);
        Assert.Same(boundMem, nic.QueueMemory(1));
        Assert.Same(h.Provider, nic.Device.RxQueues[1].MemoryProvider);

        // Still receiving into the region.
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7004));
        byte[] frame = new byte[2048];
        for (int i = 0; i < 10; i++)
        {
            InjectBounded(nic, 1, frame.AsSpan(0, UdpFrame(frame, (ulong)i, 1000, 7004)));
        }

        WaitIdle(nic);
        var seqs = new List<ulong>();
        Assert.Equal(10, Drain(socket, region, seqs));
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (ulong)i), seqs);

        h.Dispose();
        pools.Capture(nic);
        nic.Dispose();
        pools.AssertAllReturned();
        Assert.True(h.Binding.IsFreed);
        Assert.Equal(h.Binding.Size, h.Binding.Avail);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }
}
