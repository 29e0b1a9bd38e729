using Netmem.Devmem;
using Netmem.Native;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Net;

/// <summary>
/// Queue restart: alloc new → check the provider was taken → stop → start → free old, and on a
/// failure the queue keeps (or goes back to) its old memory, with the new memory freed.
/// </summary>
public sealed class QueueRestartTests : IDisposable
{
    private readonly PageArena _arena = new(16 << 20);
    private readonly RecordingQueueOps _ops;
    private readonly NetDevice _dev;

    public QueueRestartTests()
    {
        _ops = new RecordingQueueOps(_arena);
        _dev = new NetDevice("rst", 2, _ops) { TcpDataSplit = TcpDataSplit.Enabled, DmaDevice = new DmaDevice("rst-dma") };
        _dev.Register();
        _ops.StartAll(_dev); // q0 on m1, q1 on m2
    }

    public void Dispose()
    {
        _ops.Fail = null;
        _ops.StopAll(_dev);
        _dev.Unregister();
        Assert.All(_ops.Allocated, m => Assert.True(m.IsFreed, $"{m} was not freed"));
        Assert.All(_ops.Allocated, m => Assert.True(m.Payload.IsFreed && m.Header.IsFreed));
        Assert.Equal(_arena.TotalPages(0), _arena.FreePages(0));
        _arena.Dispose();
    }

    /// <summary>The queue works: its payload pool hands out and takes back a netmem.</summary>
    private static void AssertWorks(RecordingQueueOps.Mem mem)
    {
        Assert.False(mem.Payload.IsDestroyed);
        NetmemRef r = mem.Payload.AllocNetmem();
        Assert.False(r.IsNull);
        mem.Payload.RecycleDirect(r);
    }

    [Fact]
    public void Restart_allocates_new_memory_then_stops_starts_and_frees_the_old_in_that_order()
    {
        _dev.RestartQueue(0);

        Assert.Equal(["alloc q0 -> m3", "stop q0 -> m1", "start q0 m3", "free m1"], _ops.Log);
        Assert.Equal(3, _ops.Running(0)!.Serial);
        Assert.Equal(2, _ops.Running(1)!.Serial); // the other queue is not touched
        Assert.True(_ops.Allocated[0].IsFreed);
    }

    [Fact]
    public void Mem_alloc_failure_leaves_the_queue_running_on_its_old_memory()
    {
        _ops.Fail = l => l == "alloc q0";
        NetmemException e = Assert.Throws<NetmemException>(() => _dev.RestartQueue(0));
        Assert.Equal(Errno.EIO, e.Errno);

        Assert.Equal(["alloc q0 failed"], _ops.Log);
        RecordingQueueOps.Mem running = _ops.Running(0)!;
        Assert.Equal(1, running.Serial);
        AssertWorks(running);
    }

    [Fact]
    public void Start_failure_restarts_the_old_memory_and_frees_the_new()
    {
        _ops.Fail = l => l == "start q0 m3";
        NetmemException e = Assert.Throws<NetmemException>(() => _dev.RestartQueue(0));
        Assert.Equal(Errno.EIO, e.Errno);

        Assert.Equal(["alloc q0 -> m3", "stop q0 -> m1", "start q0 m3 failed", "start q0 m1", "free m3"], _ops.Log);
        RecordingQueueOps.Mem running = _ops.Running(0)!;
        Assert.Equal(1, running.Serial);
        Assert.True(_ops.Allocated[2].IsFreed);
        AssertWorks(running);

        // A later restart works normally.
        _ops.Fail = null;
        _ops.Log.Clear();
        _dev.RestartQueue(0);
        Assert.Equal(["alloc q0 -> m4", "stop q0 -> m1", "start q0 m4", "free m1"], _ops.Log);
    }

    [Fact]
    public void Stop_failure_frees_the_new_memory_and_keeps_the_old()
    {
        _ops.Fail = l => l == "stop q1";
        Assert.Throws<NetmemException>(() => _dev.RestartQueue(1));

        Assert.Equal(["alloc q1 -> m3", "stop q1 failed", "free m3"], _ops.Log);
        Assert.Equal(2, _ops.Running(1)!.Serial);
        AssertWorks(_ops.Running(1)!);
    }

    [Fact]
    public void Start_failure_on_new_and_old_memory_reports_both_and_frees_both_as_the_kernel_does()
    {
        _ops.Fail = l => l.StartsWith("start q0", StringComparison.Ordinal);
        AggregateException e = Assert.Throws<AggregateException>(() => _dev.RestartQueue(0));

        Assert.Contains("could not restart on the old", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, e.InnerExceptions.Count);
        Assert.Equal(["alloc q0 -> m3", "stop q0 -> m1", "start q0 m3 failed", "start q0 m1 failed", "free m1", "free m3"], _ops.Log);
        Assert.Null(_ops.Running(0));
        Assert.True(_ops.Allocated[0].IsFreed);
        Assert.True(_ops.Allocated[2].IsFreed);
    }

    [Fact]
    public void Provider_not_taken_fails_EOPNOTSUPP_after_alloc_and_before_stop()
    {
        using DmabufRegion region = DmabufRegion.CreateMemfd("rst-noflag", 1 << 20);
        _ops.PayloadAllowsUnreadable = false;

        NetmemException e = Assert.Throws<NetmemException>(() => _dev.BindDmabuf(region, [0]));

        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Contains("no page pool on queue 0 took its memory provider", e.Reason, StringComparison.Ordinal);
        Assert.Contains("the driver cannot take unreadable netmem", e.Reason, StringComparison.Ordinal);

        // The check ran between alloc and stop: the old memory never stopped.
        Assert.Equal(["alloc q0 -> m3", "free m3"], _ops.Log);
        Assert.Equal(1, _ops.Running(0)!.Serial);
        Assert.Null(_dev.RxQueues[0].MemoryProvider);
        Assert.Equal(0, _dev.DmaDevice!.SegmentCount);
        AssertWorks(_ops.Running(0)!);
    }

    [Fact]
    public void Binding_restarts_the_queue_and_its_new_payload_pool_serves_net_iovs()
    {
        using DmabufRegion region = DmabufRegion.CreateMemfd("rst-bind", 1 << 20);
        DmabufBindingHandle h = _dev.BindDmabuf(region, [1]);

        Assert.Equal(["alloc q1 -> m3", "stop q1 -> m2", "start q1 m3", "free m2"], _ops.Log);
        RecordingQueueOps.Mem mem = _ops.Running(1)!;
        Assert.Same(h.Provider, mem.Payload.MemoryProvider);
        Assert.Null(mem.Header.MemoryProvider); // header pool keeps readable pages
        NetmemRef r = mem.Payload.AllocNetmem();
        Assert.True(r.IsNetIov);
        Assert.Equal(h.BindingId, r.BindingId);
        mem.Payload.RecycleDirect(r);

        _ops.Log.Clear();
        h.Dispose();
        Assert.Equal(["alloc q1 -> m4", "stop q1 -> m3", "start q1 m4", "free m3"], _ops.Log);
        Assert.Null(_ops.Running(1)!.Payload.MemoryProvider);
        Assert.True(h.Binding.IsFreed);
        Assert.Equal(h.Binding.Size, h.Binding.Avail);
    }

    [Fact]
    public void Start_failure_while_binding_rolls_back_to_system_pages_and_releases_the_binding()
    {
        using DmabufRegion region = DmabufRegion.CreateMemfd("rst-bindfail", 1 << 20);
        _ops.Fail = l => l == "start q0 m3";

        Assert.Throws<NetmemException>(() => _dev.BindDmabuf(region, [0]));

        Assert.Equal(["alloc q0 -> m3", "stop q0 -> m1", "start q0 m3 failed", "start q0 m1", "free m3"], _ops.Log);
        Assert.Null(_dev.RxQueues[0].MemoryProvider);
        Assert.Null(_ops.Running(0)!.Payload.MemoryProvider);
        Assert.Equal(0, _dev.DmaDevice!.SegmentCount);
        AssertWorks(_ops.Running(0)!);
    }

    [Fact]
    public void Restart_of_an_out_of_range_queue_fails_ERANGE_without_any_queue_op()
    {
        NetmemException e = Assert.Throws<NetmemException>(() => _dev.RestartQueue(2));
        Assert.Equal(Errno.ERANGE, e.Errno);
        Assert.Empty(_ops.Log);
    }
}
