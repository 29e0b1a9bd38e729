using Netmem.Devmem;
using Netmem.Drivers.SimNic;
using Netmem.Native;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Net;

/// <summary>
/// bind-rx's checks, each with its errno and extack message, in the kernel's order: queue index
/// (ERANGE), tcp-data-split (EINVAL), hds-thresh (EINVAL), XDP (EEXIST), queue already bound
/// (EEXIST), queue management (EOPNOTSUPP). A refused bind leaves no provider on any queue and
/// releases its binding (the device's IOVA space is empty again).
/// </summary>
public sealed class ProviderOpenChecksTests
{
    private static (SimNic Nic, PageArena Arena, DmabufRegion Region) NewNic(string name, bool hds = true)
    {
        var arena = new PageArena(16 << 20);
        var nic = new SimNic(name, new SimNicOptions { RxQueues = 2, RxRingSize = 32, PoolSize = 64, HeaderDataSplit = hds, Arena = arena });
        return (nic, arena, DmabufRegion.CreateMemfd(name, 1 << 20));
    }

    private static NetmemException BindFails(SimNic nic, DmabufRegion region, params int[] queues) =>
        Assert.Throws<NetmemException>(() => nic.Device.BindDmabuf(region, queues));

    /// <summary>No queue has a provider and the refused binding was freed: its mapping left the device's IOVA space.</summary>
    private static void AssertNothingBound(SimNic nic, int expectedSegments = 0)
    {
        Assert.All(nic.Device.RxQueues, q => Assert.Null(q.MemoryProvider));
        Assert.False(nic.Device.HasBoundQueue);
        Assert.Equal(expectedSegments, nic.Dma.SegmentCount);
    }

    private static void SetXdpPrograms(NetDevice dev, int count) => SetField(dev, "_xdpPrograms", count);

    /// <summary>Sets a private field: models a configuration the public setters refuse while a queue is bound.</summary>
    private static void SetField(NetDevice dev, string field, object value) =>
        typeof(NetDevice).GetField(field, System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.SetValue(dev, value);

    private static void TearDown(SimNic nic, PageArena arena, DmabufRegion region)
    {
        nic.Dispose();
        region.Dispose();
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
        arena.Dispose();
    }

    [Fact]
    public void Queue_index_out_of_range_fails_ERANGE_and_binds_nothing()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-range");
        NetmemException e = BindFails(nic, region, 2);
        Assert.Equal(Errno.ERANGE, e.Errno);
        Assert.Equal("chk-range: rx queue index 2 out of range (device has 2)", e.Reason);
        AssertNothingBound(nic);
        TearDown(nic, arena, region);
    }

    [Fact]
    public void Negative_queue_index_fails_ERANGE()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-neg");
        NetmemException e = BindFails(nic, region, -1);
        Assert.Equal(Errno.ERANGE, e.Errno);
        Assert.Contains("rx queue index -1 out of range", e.Reason, StringComparison.Ordinal);
        AssertNothingBound(nic);
        TearDown(nic, arena, region);
    }

    [Fact]
    public void Tcp_data_split_disabled_fails_EINVAL()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-hds", hds: false);
        Assert.Equal(TcpDataSplit.Disabled, nic.Device.TcpDataSplit);
        NetmemException e = BindFails(nic, region, 0);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal("chk-hds: tcp-data-split is disabled", e.Reason);
        Assert.EndsWith("(EINVAL)", e.Message, StringComparison.Ordinal);
        AssertNothingBound(nic);
        TearDown(nic, arena, region);
    }

    [Fact]
    public void Tcp_data_split_unknown_fails_EINVAL_like_disabled()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-unk");
        nic.Device.TcpDataSplit = TcpDataSplit.Unknown;
        NetmemException e = BindFails(nic, region, 0);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("tcp-data-split is disabled", e.Reason, StringComparison.Ordinal);
        AssertNothingBound(nic);
        TearDown(nic, arena, region);
    }

    [Fact]
    public void Hds_threshold_not_zero_fails_EINVAL()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-thr");
        nic.Device.HdsThreshold = 256;
        NetmemException e = BindFails(nic, region, 0);
        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal("chk-thr: hds-thresh is not zero", e.Reason);
        AssertNothingBound(nic);
        TearDown(nic, arena, region);
    }

    [Fact]
    public void Xdp_attached_fails_EEXIST()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-xdp");
        nic.Device.AttachXdp();
        NetmemException e = BindFails(nic, region, 1);
        Assert.Equal(Errno.EEXIST, e.Errno);
        Assert.Equal("chk-xdp: unable to install a memory provider on a device with an XDP program attached", e.Reason);
        AssertNothingBound(nic);

        // Once the program is gone the same bind succeeds.
        nic.Device.DetachXdp();
        using (DmabufBindingHandle h = nic.Device.BindDmabuf(region, [1]))
        {
            Assert.Same(h.Provider, nic.Device.RxQueues[1].MemoryProvider);
        }

        AssertNothingBound(nic);
        TearDown(nic, arena, region);
    }

    [Fact]
    public void Queue_already_bound_fails_EEXIST_and_keeps_the_first_binding()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-bound");
        using DmabufRegion second = DmabufRegion.CreateMemfd("chk-bound-2", 1 << 20);
        DmabufBindingHandle first = nic.Device.BindDmabuf(region, [0]);
        int segmentsOfFirst = nic.Dma.SegmentCount;

        NetmemException e = BindFails(nic, second, 0);
        Assert.Equal(Errno.EEXIST, e.Errno);
        Assert.Equal("chk-bound: designated queue 0 already has a memory provider bound", e.Reason);

        // The first binding is untouched; the refused one left the IOVA space.
        Assert.Same(first.Provider, nic.Device.RxQueues[0].MemoryProvider);
        Assert.Equal([nic.Device.RxQueues[0]], first.Binding.BoundQueues);
        Assert.Null(nic.Device.RxQueues[1].MemoryProvider);
        Assert.Equal(segmentsOfFirst, nic.Dma.SegmentCount);

        first.Dispose();
        AssertNothingBound(nic);
        TearDown(nic, arena, region);
    }

    [Fact]
    public void The_same_queue_twice_in_one_request_fails_EEXIST_and_rolls_back_the_first()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-twice");
        NetmemException e = BindFails(nic, region, 1, 1);
        Assert.Equal(Errno.EEXIST, e.Errno);
        Assert.Contains("designated queue 1 already has a memory provider bound", e.Reason, StringComparison.Ordinal);
        AssertNothingBound(nic);
        TearDown(nic, arena, region);
    }

    [Fact]
    public void A_later_queue_out_of_range_rolls_back_the_queues_already_bound()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-later");
        NetmemException e = BindFails(nic, region, 0, 1, 7);
        Assert.Equal(Errno.ERANGE, e.Errno);
        AssertNothingBound(nic);

        // The rolled-back queues run on system pages again.
        Assert.All(new[] { 0, 1 }, q => Assert.Null(NetdevIntrospection.DmabufIdOf(nic.QueueMemory(q)!.PayloadPool)));
        TearDown(nic, arena, region);
    }

    [Fact]
    public void Driver_without_queue_management_fails_EOPNOTSUPP()
    {
        var dev = new NetDevice("chk-noops", 2) { TcpDataSplit = TcpDataSplit.Enabled, DmaDevice = new DmaDevice("chk-noops-dma") };
        dev.Register();
        using DmabufRegion region = DmabufRegion.CreateMemfd("chk-noops", 1 << 20);
        Assert.Null(dev.QueueOps);

        NetmemException e = Assert.Throws<NetmemException>(() => dev.BindDmabuf(region, [0]));
        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Equal("chk-noops: driver does not support queue management, so a memory provider cannot be installed", e.Reason);
        Assert.EndsWith("(EOPNOTSUPP)", e.Message, StringComparison.Ordinal);
        Assert.All(dev.RxQueues, q => Assert.Null(q.MemoryProvider));
        Assert.Equal(0, dev.DmaDevice.SegmentCount);
        dev.Unregister();
    }

    [Fact]
    public void Open_with_an_own_binding_leaves_it_whole_and_unreferenced_after_each_refusal()
    {
        using var arena = new PageArena(16 << 20);
        var ops = new RecordingQueueOps(arena);
        var dev = new NetDevice("chk-own", 2, ops) { TcpDataSplit = TcpDataSplit.Enabled, DmaDevice = new DmaDevice("chk-own-dma") };
        dev.Register();
        ops.StartAll(dev);
        using DmabufRegion region = DmabufRegion.CreateMemfd("chk-own", 1 << 20);
        var binding = DmabufBinding.Create(region, dev.DmaDevice);
        var provider = new DevmemProvider(binding);

        dev.HdsThreshold = 1;
        NetmemException e = Assert.Throws<NetmemException>(() => dev.OpenMemoryProvider(0, provider));
        Assert.Equal(Errno.EINVAL, e.Errno);

        Assert.Null(dev.RxQueues[0].MemoryProvider);
        Assert.Empty(binding.BoundQueues);
        Assert.Equal(1, binding.RefCount);
        Assert.Equal(binding.Size, binding.Avail);
        Assert.Empty(ops.Log); // refused before any queue op ran

        binding.Put();
        Assert.True(binding.IsFreed);
        Assert.Null(DmabufBinding.FromId(binding.Id));
        ops.StopAll(dev);
        dev.Unregister();
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void Checks_run_in_the_kernel_order_each_cleared_check_revealing_the_next()
    {
        using var arena = new PageArena(16 << 20);
        var ops = new RecordingQueueOps(arena);
        var dev = new NetDevice("chk-order", 2, ops) { DmaDevice = new DmaDevice("chk-order-dma") };
        dev.Register();
        ops.StartAll(dev);
        using DmabufRegion region = DmabufRegion.CreateMemfd("chk-order", 1 << 20);
        var binding = DmabufBinding.Create(region, dev.DmaDevice);
        var provider = new DevmemProvider(binding);
        using DmabufRegion otherRegion = DmabufRegion.CreateMemfd("chk-order-2", 1 << 20);
        var other = DmabufBinding.Create(otherRegion, dev.DmaDevice);
        var otherProvider = new DevmemProvider(other);

        // Bind queue 0 first (every check passes), then break every other condition at once.
        dev.TcpDataSplit = TcpDataSplit.Enabled;
        dev.OpenMemoryProvider(0, otherProvider);

        // SetRingParams refuses both while queue 0 is bound, so write the fields directly.
        SetField(dev, "_tcpDataSplit", TcpDataSplit.Disabled);
        SetField(dev, "_hdsThreshold", 128);

        // AttachXdp refuses a device with a bound queue (EBUSY), so model a program that was
        // attached before the first bind by setting the count directly.
        SetXdpPrograms(dev, 1);

        IQueueManagementOps savedOps = dev.QueueOps!;
        dev.QueueOps = null;

        List<(int Errno, string Fragment)> seen = [];
        void Next(int queue)
        {
            NetmemException e = Assert.Throws<NetmemException>(() => dev.OpenMemoryProvider(queue, provider));
            seen.Add((e.Errno, e.Reason));
        }

        Next(5);
        Next(0);
        SetField(dev, "_tcpDataSplit", TcpDataSplit.Enabled);
        Next(0);
        SetField(dev, "_hdsThreshold", 0);
        Next(0);
        SetXdpPrograms(dev, 0);
        Next(0);
        Next(1);

        Assert.Collection(seen,
            s => { Assert.Equal(Errno.ERANGE, s.Errno); Assert.Contains("out of range", s.Fragment, StringComparison.Ordinal); },
            s => { Assert.Equal(Errno.EINVAL, s.Errno); Assert.Contains("tcp-data-split", s.Fragment, StringComparison.Ordinal); },
            s => { Assert.Equal(Errno.EINVAL, s.Errno); Assert.Contains("hds-thresh", s.Fragment, StringComparison.Ordinal); },
            s => { Assert.Equal(Errno.EEXIST, s.Errno); Assert.Contains("XDP", s.Fragment, StringComparison.Ordinal); },
            s => { Assert.Equal(Errno.EEXIST, s.Errno); Assert.Contains("already has a memory provider", s.Fragment, StringComparison.Ordinal); },
            s => { Assert.Equal(Errno.EOPNOTSUPP, s.Errno); Assert.Contains("queue management", s.Fragment, StringComparison.Ordinal); });
        Assert.Null(dev.RxQueues[1].MemoryProvider);
        Assert.Same(otherProvider, dev.RxQueues[0].MemoryProvider);
        Assert.Equal(1, binding.RefCount);

        dev.QueueOps = savedOps;
        dev.CloseMemoryProvider(0, otherProvider);
        binding.Put();
        other.Put();
        ops.StopAll(dev);
        dev.Unregister();
        Assert.True(binding.IsFreed);
        Assert.True(other.IsFreed);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void Attaching_xdp_to_a_device_with_a_bound_queue_fails_EBUSY()
    {
        (SimNic nic, PageArena arena, DmabufRegion region) = NewNic("chk-ebusy");
        DmabufBindingHandle h = nic.Device.BindDmabuf(region, [1]);

        NetmemException e = Assert.Throws<NetmemException>(() => nic.Device.AttachXdp());
        Assert.Equal(Errno.EBUSY, e.Errno);
        Assert.Equal("chk-ebusy: unable to attach XDP to a device using a memory provider", e.Reason);
        Assert.Equal(0, nic.Device.XdpProgramCount);

        h.Dispose();
        nic.Device.AttachXdp();
        Assert.Equal(1, nic.Device.XdpProgramCount);
        nic.Device.DetachXdp();
        TearDown(nic, arena, region);
    }

    [Fact]
    public void Unregister_uninstalls_providers_and_drops_the_bindings_queue_entries()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("chk-unreg", 1 << 20);
        var nic = new SimNic("chk-unreg", new SimNicOptions { RxQueues = 3, RxRingSize = 32, PoolSize = 64, Arena = arena });
        DmabufBindingHandle h = nic.Device.BindDmabuf(region, [0, 2]);
        Assert.Equal(2, h.Binding.BoundQueues.Count);
        int refsWhileBound = h.Binding.RefCount;

        nic.Device.Unregister();

        Assert.False(nic.Device.IsRegistered);
        Assert.False(nic.Device.IsUp);
        Assert.All(nic.Device.RxQueues, q => Assert.Null(q.MemoryProvider));
        Assert.Empty(h.Binding.BoundQueues);
        Assert.Equal(refsWhileBound - 2, h.Binding.RefCount); // the two queue references are gone
        Assert.DoesNotContain(nic.Device, NetDevice.All);

        // Unbinding afterwards has nothing left to do but drop the creator's reference; the
        // payload pools keep theirs until the driver frees its memory.
        h.Dispose();
        Assert.False(h.Binding.IsFreed);
        nic.Dispose();
        Assert.True(h.Binding.IsFreed);
        Assert.Equal(h.Binding.Size, h.Binding.Avail);
        Assert.Equal(0, nic.Dma.SegmentCount);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }
}
