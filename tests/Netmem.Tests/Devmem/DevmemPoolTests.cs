using Netmem.Devmem;
using Netmem.Providers;
using Xunit;

namespace Netmem.Tests.Devmem;

/// <summary>A page pool fed by the devmem provider: alloc, recycle, release, and what it does to the binding.</summary>
[Collection(DevmemCollection.Name)]
public sealed unsafe class DevmemPoolTests
{
    [Fact]
    public void Alloc_hands_out_net_iovs_of_the_binding_with_their_dma_address_and_region_offset()
    {
        using var s = new DevmemSetup(netIovs: 128);
        PagePool pool = s.NewPool();
        DmaSegment seg = Assert.Single(s.Binding.Segments);

        NetmemRef n = pool.AllocNetmem();

        Assert.True(n.IsNetIov);
        Assert.Equal(s.Binding.Id, n.BindingId);
        Assert.Equal(pool.Id, n.PoolId);
        Assert.Equal(1L, n.PoolRefCount);
        Assert.Equal(0UL, n.RegionOffset % 4096);
        Assert.Equal(seg.DmaAddress + n.RegionOffset, n.DmaAddress);
        Assert.Equal((ulong)n.NetIovIndex * 4096, n.RegionOffset);
        Assert.Same(s.Binding, DmabufBinding.FromNetIov(n));

        // The slow path took a bulk of one refill batch from the binding's gen pool.
        Assert.Equal(PagePool.RefillBatch, s.Binding.OutstandingNetIovs);
        Assert.Equal(1UL, pool.GetStats().AllocSlow);

        pool.RecycleDirect(n);
        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.Equal(s.Binding.Size, s.Binding.Avail);
    }

    [Fact]
    public void Descriptors_carry_the_net_iov_magic_type_and_a_page_reference_of_one()
    {
        using var s = new DevmemSetup(netIovs: 64);
        PagePool pool = s.NewPool();

        NetmemRef n = pool.AllocNetmem();
        NetIovDesc* d = n.NetIovDescriptor;

        Assert.Equal(NetmemDesc.NetIovMagic, d->Common.Magic);
        Assert.Equal((int)NetIovType.Dmabuf, d->Type);
        Assert.Equal(1, d->PageRef);
        Assert.Equal(0, (long)(nuint)d % 64);
        Assert.Equal((int)NetmemState.InFlight, d->Common.State);

        pool.RecycleDirect(n);
        pool.Dispose();
    }

    [Fact]
    public void Direct_recycle_puts_the_net_iov_back_in_the_cache_for_the_next_alloc()
    {
        using var s = new DevmemSetup();
        PagePool pool = s.NewPool();

        NetmemRef a = pool.AllocNetmem();
        pool.RecycleDirect(a);
        NetmemRef b = pool.AllocNetmem();

        Assert.Equal(a, b);
        PagePoolStats st = pool.GetStats();
        Assert.Equal(1UL, st.AllocSlow);
        Assert.Equal(1UL, st.AllocFast);
        Assert.Equal(1UL, st.RecycleCached);
        Assert.Equal(PagePool.RefillBatch, s.Binding.OutstandingNetIovs);

        pool.RecycleDirect(b);
        pool.Dispose();
    }

    [Fact]
    public void Net_iovs_returned_from_another_thread_go_through_the_ring_and_refill_the_cache()
    {
        using var s = new DevmemSetup();
        PagePool pool = s.NewPool();
        var held = new NetmemRef[PagePool.RefillBatch];
        for (int i = 0; i < held.Length; i++)
        {
            held[i] = pool.AllocNetmem();
        }

        Assert.Equal(0, pool.AllocCacheCount);
        var remote = new Thread(() =>
        {
            foreach (NetmemRef r in held)
            {
                pool.PutNetmem(r, -1, allowDirect: false);
            }
        });
        remote.Start();
        remote.Join();
        Assert.Equal(held.Length, pool.RingCount);

        NetmemRef again = pool.AllocNetmem();

        Assert.Contains(again, held);
        PagePoolStats st = pool.GetStats();
        Assert.Equal((ulong)held.Length, st.RecycleRing);
        Assert.Equal(1UL, st.AllocRefill);
        Assert.Equal(1UL, st.AllocSlow);
        Assert.Equal(PagePool.RefillBatch, s.Binding.OutstandingNetIovs);

        pool.RecycleDirect(again);
        pool.Dispose();
        Assert.True(pool.IsFreed);
    }

    [Fact]
    public void A_full_ring_releases_the_net_iov_to_the_binding()
    {
        using var s = new DevmemSetup();
        PagePool pool = s.NewPool(poolSize: 16);
        var held = new NetmemRef[PagePool.RefillBatch];
        for (int i = 0; i < held.Length; i++)
        {
            held[i] = pool.AllocNetmem();
        }

        foreach (NetmemRef r in held)
        {
            pool.PutNetmem(r, -1, allowDirect: false);
        }

        PagePoolStats st = pool.GetStats();
        Assert.Equal((ulong)pool.RingCapacity, st.RecycleRing);
        Assert.Equal((ulong)(held.Length - pool.RingCapacity), st.RecycleRingFull);
        Assert.Equal(pool.RingCapacity, s.Binding.OutstandingNetIovs);
        NetmemRef released = held[^1];
        Assert.Equal(0, released.PoolId);
        Assert.Equal(0L, released.PoolRefCount);

        pool.Dispose();
        Assert.Equal(0, s.Binding.OutstandingNetIovs);
    }

    [Fact]
    public void Every_net_iov_is_handed_out_once_and_the_pool_runs_dry_with_the_binding()
    {
        const int count = 200;
        using var s = new DevmemSetup(netIovs: count);
        PagePool pool = s.NewPool();
        var got = new List<NetmemRef>();
        NetmemRef r;
        while (!(r = pool.AllocNetmem()).IsNull)
        {
            got.Add(r);
        }

        Assert.Equal(count, got.Count);
        Assert.Equal(count, got.Select(x => x.DmaAddress).Distinct().Count());
        Assert.Equal(
            Enumerable.Range(0, count).Select(i => (ulong)i * 4096),
            got.Select(x => x.RegionOffset).Order());
        Assert.Equal(0, s.Binding.Avail);

        foreach (NetmemRef x in got)
        {
            pool.RecycleDirect(x);
        }

        pool.Dispose();
        Assert.Equal(s.Binding.Size, s.Binding.Avail);
    }

    [Fact]
    public void After_pool_dispose_every_net_iov_is_back_and_the_binding_reference_is_dropped()
    {
        using var s = new DevmemSetup();
        int refsBefore = s.Binding.RefCount;
        PagePool pool = s.NewPool();
        var inUse = new List<NetmemRef>();
        for (int i = 0; i < 100; i++)
        {
            inUse.Add(pool.AllocNetmem());
        }

        for (int i = 0; i < inUse.Count; i++)
        {
            if (i % 2 == 0)
            {
                pool.RecycleDirect(inUse[i]);
            }
            else
            {
                pool.PutNetmem(inUse[i], -1, allowDirect: false);
            }
        }

        pool.Dispose();

        Assert.True(pool.IsFreed);
        Assert.Equal(0L, pool.Inflight);
        Assert.Equal(s.Binding.Size, s.Binding.Avail);
        Assert.Equal(refsBefore, s.Binding.RefCount);
        PagePoolStats st = pool.GetStats();
        Assert.Equal(st.HoldCount, st.ReleaseCount);
        Assert.All(inUse, n =>
        {
            Assert.Equal(0, n.PoolId);
            Assert.Equal(0L, n.PoolRefCount);
        });
    }

    [Fact]
    public void A_net_iov_returned_after_dispose_lets_the_lingering_pool_free_and_drop_its_reference()
    {
        using var s = new DevmemSetup();
        PagePool pool = s.NewPool();
        NetmemRef held = pool.AllocNetmem();

        pool.Dispose();
        Assert.False(pool.IsFreed);
        Assert.Equal(2, s.Binding.RefCount);
        Assert.Equal(1, s.Binding.OutstandingNetIovs);

        pool.PutNetmem(held, -1, allowDirect: false);

        Assert.True(pool.IsFreed);
        Assert.Equal(1, s.Binding.RefCount);
        Assert.Equal(0, s.Binding.OutstandingNetIovs);
    }

    [Fact]
    public void The_provider_toggle_counts_provider_pools_up_and_down()
    {
        using var s = new DevmemSetup();
        int before = MemoryProviderToggle.Count;

        PagePool a = s.NewPool();
        Assert.Equal(before + 1, MemoryProviderToggle.Count);
        Assert.True(MemoryProviderToggle.IsEnabled);
        PagePool b = s.NewPool();
        Assert.Equal(before + 2, MemoryProviderToggle.Count);

        a.Dispose();
        Assert.Equal(before + 1, MemoryProviderToggle.Count);
        b.Dispose();
        Assert.Equal(before, MemoryProviderToggle.Count);
    }

    [Fact]
    public void A_pool_without_AllowUnreadableNetmem_on_a_provider_queue_gets_system_pages()
    {
        using var s = new DevmemSetup();
        using var arena = new PageArena(4 << 20);
        int toggle = MemoryProviderToggle.Count;
        var header = new PagePool(new PagePoolParams
        {
            Napi = s.Napi,
            Queue = s.Queue,
            Arena = arena,
            Flags = PagePoolFlags.DmaMap,
            Name = "devmem-header",
        });

        NetmemRef p = header.AllocNetmem();

        Assert.True(p.IsPage);
        Assert.Null(header.MemoryProvider);
        Assert.Equal(toggle, MemoryProviderToggle.Count);
        Assert.Equal(1, s.Binding.RefCount);
        Assert.Equal(0, s.Binding.OutstandingNetIovs);
        Assert.Equal(4096, p.GetPageSpan().Length);

        header.RecycleDirect(p);
        header.Dispose();
    }

    [Fact]
    public void Page_only_apis_refuse_a_net_iov()
    {
        using var s = new DevmemSetup();
        PagePool pool = s.NewPool();
        NetmemRef n = pool.AllocNetmem();

        Assert.Contains("DmabufRegion", Assert.Throws<InvalidOperationException>(() => n.GetPageSpan()).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => n.PageAddress);
        Assert.Throws<InvalidOperationException>(() => n.PageOrder);
        Assert.Contains(s.Provider.Describe(), Assert.Throws<InvalidOperationException>(() => pool.AllocPage()).Message, StringComparison.Ordinal);

        pool.RecycleDirect(n);
        pool.Dispose();
    }

    [Fact]
    public void Net_iov_apis_refuse_a_page()
    {
        using var s = new DevmemSetup();
        using var arena = new PageArena(4 << 20);
        NetmemRef page = arena.Alloc(0);

        Assert.Throws<InvalidOperationException>(() => s.Region.ReadNetIov(page, 0, 16));
        Assert.Throws<InvalidOperationException>(() => page.BindingId);
        Assert.Throws<InvalidOperationException>(() => DmabufBinding.FromNetIov(page));

        arena.Free(page);
    }

    [Fact]
    public void Releasing_a_net_iov_whose_pool_count_is_not_one_is_a_loud_bug()
    {
        using var s = new DevmemSetup();
        PagePool pool = s.NewPool();
        NetmemRef stray = s.Binding.AllocNetIov(); // pool count 0: never set up by a pool

        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => s.Provider.ReleaseNetmem(pool, stray));

        Assert.Contains("reference count 0", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, s.Binding.OutstandingNetIovs);
        s.Binding.FreeNetIov(stray);
        pool.Dispose();
    }

    [Fact]
    public void Releasing_a_page_to_the_devmem_provider_is_a_loud_bug()
    {
        using var s = new DevmemSetup();
        using var arena = new PageArena(4 << 20);
        PagePool pool = s.NewPool();
        NetmemRef page = arena.Alloc(0);

        Assert.Throws<InvalidOperationException>(() => s.Provider.ReleaseNetmem(pool, page));

        arena.Free(page);
        pool.Dispose();
    }
    [Fact]
    public void A_pool_destroy_that_frees_a_binding_with_a_stray_net_iov_out_throws_EBUSY_yet_frees_the_pool()
    {
        using var s = new DevmemSetup();
        int toggle = MemoryProviderToggle.Count;
        PagePool pool = s.NewPool();
        NetmemRef n = pool.AllocNetmem();
        pool.RecycleDirect(n);
        NetmemRef stray = s.Binding.AllocNetIov(); // taken outside any pool, never returned
        s.Binding.Put(); // the creator's reference: the pool now holds the last one

        NetmemException e = Assert.Throws<NetmemException>(pool.Dispose);

        Assert.Equal(Native.Errno.EBUSY, e.Errno);
        Assert.True(pool.IsFreed);
        Assert.Null(PagePool.FromId(pool.Id));
        Assert.Equal(toggle, MemoryProviderToggle.Count);
        Assert.False(s.Binding.IsFreed);
        Assert.Equal(1, s.Binding.OutstandingNetIovs);

        s.Binding.FreeNetIov(stray);
        Assert.True(s.Binding.IsFreed);
    }
}
