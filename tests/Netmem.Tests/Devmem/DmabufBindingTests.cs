using Netmem.Devmem;
using Netmem.Genalloc;
using Netmem.Native;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Devmem;

/// <summary>Binding ids, reference counting, chunks per segment, queues, and a loud free with net_iovs out.</summary>
[Collection(DevmemCollection.Name)]
public sealed class DmabufBindingTests
{
    [Fact]
    public void Binding_ids_are_unique_and_allocated_in_increasing_order()
    {
        using var a = new DevmemSetup(netIovs: 4);
        using var b = new DevmemSetup(netIovs: 4);
        using var c = new DevmemSetup(netIovs: 4);

        Assert.True(a.Binding.Id >= 1);
        Assert.True(b.Binding.Id > a.Binding.Id);
        Assert.True(c.Binding.Id > b.Binding.Id);
        Assert.Same(b.Binding, DmabufBinding.FromId(b.Binding.Id));
    }

    [Fact]
    public void Binding_ids_are_not_reused_at_once_after_a_free()
    {
        int freedId;
        using (var a = new DevmemSetup(netIovs: 4))
        {
            freedId = a.Binding.Id;
        }

        Assert.Null(DmabufBinding.FromId(freedId));
        using var b = new DevmemSetup(netIovs: 4);
        Assert.Equal(freedId + 1, b.Binding.Id);
    }

    [Fact]
    public void Binding_ids_wrap_around_to_the_lowest_free_id_and_skip_ids_in_use()
    {
        using var low = new DevmemSetup(netIovs: 4);
        DmabufBinding.SetNextIdForTests(int.MaxValue - 1);
        try
        {
            using var beforeMax = new DevmemSetup(netIovs: 4);
            using var max = new DevmemSetup(netIovs: 4);
            DmabufBinding.SetNextIdForTests(low.Binding.Id);
            using var afterLow = new DevmemSetup(netIovs: 4);

            Assert.Equal(int.MaxValue - 1, beforeMax.Binding.Id);
            Assert.Equal(int.MaxValue, max.Binding.Id);
            Assert.True(afterLow.Binding.Id > low.Binding.Id); // low's id is in use: skipped
            Assert.Same(afterLow.Binding, DmabufBinding.FromId(afterLow.Binding.Id));

            DmabufBinding.SetNextIdForTests(int.MaxValue);
            using var wrapped = new DevmemSetup(netIovs: 4);
            int[] inUse = [low.Binding.Id, beforeMax.Binding.Id, max.Binding.Id, afterLow.Binding.Id];
            Assert.InRange(wrapped.Binding.Id, 1, low.Binding.Id + inUse.Length); // wrapped past max to the low end
            Assert.DoesNotContain(wrapped.Binding.Id, inUse);
        }
        finally
        {
            DmabufBinding.SetNextIdForTests(low.Binding.Id + 100);
        }
    }

    [Fact]
    public void Get_and_put_count_references_and_the_last_put_unmaps_and_frees()
    {
        var s = new DevmemSetup(netIovs: 8);
        DmabufBinding b = s.Binding;
        int segmentsMapped = s.Device.SegmentCount;

        b.Get();
        Assert.Equal(2, b.RefCount);
        b.Put();
        Assert.Equal(1, b.RefCount);
        Assert.False(b.IsFreed);

        b.Put();

        Assert.Equal(0, b.RefCount);
        Assert.True(b.IsFreed);
        Assert.False(b.Mapping.IsMapped);
        Assert.Equal(segmentsMapped - 1, s.Device.SegmentCount);
        Assert.Null(DmabufBinding.FromId(b.Id));
        Assert.Throws<InvalidOperationException>(b.Put);
        Assert.Throws<ObjectDisposedException>(b.Get);
        s.Dispose();
    }

    [Fact]
    public void Freeing_a_binding_with_a_net_iov_out_throws_EBUSY_and_raises_the_destroyed_event()
    {
        using var events = new BindingEventRecorder();
        var s = new DevmemSetup(netIovs: 16);
        DmabufBinding b = s.Binding;
        NetmemRef outstanding = b.AllocNetIov();

        NetmemException e = Assert.Throws<NetmemException>(b.Put);

        Assert.Equal(Errno.EBUSY, e.Errno);
        Assert.Contains($"dmabuf binding {b.Id}", e.Message, StringComparison.Ordinal);
        Assert.Contains("1 net_iovs still out", e.Message, StringComparison.Ordinal);
        Assert.Contains("size 65536, avail 61440", e.Message, StringComparison.Ordinal);
        var destroyed = events.Destroyed(b.Id);
        Assert.Single(destroyed);
        Assert.Equal(1L, (long)destroyed[0].Payload![3]!);

        // Lingering: still mapped and findable, so the holder can read and return it.
        Assert.False(b.IsFreed);
        Assert.True(b.Mapping.IsMapped);
        Assert.Same(b, DmabufBinding.FromNetIov(outstanding));

        b.FreeNetIov(outstanding);

        Assert.True(b.IsFreed);
        Assert.False(b.Mapping.IsMapped);
        Assert.Null(DmabufBinding.FromId(b.Id));
        destroyed = events.Destroyed(b.Id);
        Assert.Equal(2, destroyed.Count);
        Assert.Equal(0L, (long)destroyed[1].Payload![3]!);
        s.Dispose();
    }

    [Fact]
    public void Freeing_a_net_iov_twice_is_refused()
    {
        using var s = new DevmemSetup(netIovs: 4);
        NetmemRef n = s.Binding.AllocNetIov();
        s.Binding.FreeNetIov(n);

        NetmemException e = Assert.Throws<NetmemException>(() => s.Binding.FreeNetIov(n));

        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal(0, s.Binding.OutstandingNetIovs);
    }

    [Fact]
    public void A_net_iov_of_another_binding_is_refused()
    {
        using var a = new DevmemSetup(netIovs: 4);
        using var b = new DevmemSetup(netIovs: 4);
        NetmemRef n = a.Binding.AllocNetIov();

        Assert.Throws<InvalidOperationException>(() => b.Binding.FreeNetIov(n));

        a.Binding.FreeNetIov(n);
    }

    [Fact]
    public void A_max_segment_size_yields_several_segments_each_its_own_gen_pool_chunk()
    {
        using var s = new DevmemSetup(netIovs: 16, maxSegmentSize: 16 << 10);
        DmabufBinding b = s.Binding;

        Assert.Equal(4, b.Segments.Count);
        Assert.Equal([0L, 16384L, 32768L, 49152L], b.Segments.Select(x => x.RegionOffset));
        Assert.All(b.Segments, x => Assert.Equal(16384L, x.Length));
        var chunks = new List<GenPoolChunkInfo>();
        b.ChunkPool.ForEachChunk(chunks.Add);
        Assert.Equal(4, chunks.Count);
        for (int i = 0; i < 4; i++)
        {
            Assert.Equal(b.Segments[i].DmaAddress, chunks[i].StartAddr);
            Assert.Equal(16384UL, chunks[i].Size);
            Assert.IsType<NetIovArea>(chunks[i].Owner);
        }

        Assert.Equal(64L << 10, b.Size);
    }

    [Fact]
    public void Each_net_iov_of_a_multi_segment_binding_has_the_dma_address_of_its_segment()
    {
        using var s = new DevmemSetup(netIovs: 16, maxSegmentSize: 8 << 10);
        var all = new List<NetmemRef>();
        for (int i = 0; i < 16; i++)
        {
            all.Add(s.Binding.AllocNetIov());
        }

        Assert.True(s.Binding.AllocNetIov().IsNull);
        foreach (NetmemRef n in all)
        {
            DmaSegment seg = s.Binding.Segments.Single(x => (long)n.RegionOffset >= x.RegionOffset && (long)n.RegionOffset < x.RegionOffset + x.Length);
            Assert.Equal(seg.DmaAddress + (n.RegionOffset - (ulong)seg.RegionOffset), n.DmaAddress);
            s.Device.DmaWrite(n.DmaAddress, BitConverter.GetBytes(n.RegionOffset));
        }

        foreach (NetmemRef n in all)
        {
            Assert.Equal(n.RegionOffset, BitConverter.ToUInt64(s.Region.ReadNetIov(n, 0, 8)));
            s.Binding.FreeNetIov(n);
        }
    }

    [Fact]
    public void Unbind_clears_each_bound_queue_and_drops_the_references_taken_for_them()
    {
        using var s = new DevmemSetup(netIovs: 4);
        var q1 = new RxQueue(1) { MemoryProvider = s.Provider };
        var q2 = new RxQueue(2) { MemoryProvider = s.Provider };
        s.Binding.AttachQueue(q1);
        s.Binding.AttachQueue(q2);
        Assert.Equal(3, s.Binding.RefCount);
        Assert.Equal([q1, q2], s.Binding.BoundQueues);

        s.Binding.Unbind();

        Assert.Null(q1.MemoryProvider);
        Assert.Null(q2.MemoryProvider);
        Assert.Empty(s.Binding.BoundQueues);
        Assert.Equal(1, s.Binding.RefCount);
    }

    [Fact]
    public void Binding_a_queue_twice_is_refused_with_EEXIST()
    {
        using var s = new DevmemSetup(netIovs: 4);
        var q = new RxQueue(3);
        s.Binding.AttachQueue(q);

        NetmemException e = Assert.Throws<NetmemException>(() => s.Binding.AttachQueue(q));

        Assert.Equal(Errno.EEXIST, e.Errno);
        Assert.Equal(2, s.Binding.RefCount);
        s.Binding.Unbind();
    }

    [Fact]
    public void Provider_uninstall_forgets_the_queue_and_drops_its_reference()
    {
        using var s = new DevmemSetup(netIovs: 4);
        s.Binding.AttachQueue(s.Queue);
        Assert.Equal(2, s.Binding.RefCount);

        s.Provider.Uninstall(s.Queue);

        Assert.Empty(s.Binding.BoundQueues);
        Assert.Equal(1, s.Binding.RefCount);
        s.Provider.Uninstall(s.Queue); // not bound any more: nothing happens
        Assert.Equal(1, s.Binding.RefCount);
    }
}
