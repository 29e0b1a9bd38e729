using System.Buffers;
using Netmem.Buffers;
using Xunit;

namespace Netmem.Tests.Buffers;

public sealed class PagePoolMemoryPoolTests
{
    [Fact]
    public void Rent_gives_a_whole_page_whose_bytes_are_the_pool_page_and_dispose_recycles_it()
    {
        using var arena = new PageArena(4 << 20);
        var pool = new PagePool(new PagePoolParams { Arena = arena, Name = "mempool" });
        using var memoryPool = new PagePoolMemoryPool(pool, ownsPool: true);

        IMemoryOwner<byte> owner = memoryPool.Rent(1000);
        var manager = (NetmemMemoryManager)owner;
        NetmemRef page = manager.Page;
        Assert.Equal(4096, owner.Memory.Length);
        owner.Memory.Span[0] = 0xAB;
        Assert.Equal(0xAB, page.GetPageSpan()[0]);
        Assert.Equal(1L, page.PoolRefCount);

        owner.Dispose();
        owner.Dispose(); // idempotent: the page goes back once

        PagePoolStats s = pool.GetStats();
        Assert.Equal(1UL, s.RecycleCached + s.RecycleRing);
        Assert.True(manager.Page.IsNull);
        Assert.Throws<ObjectDisposedException>(() => owner.Memory.Span.Length);
    }

    [Fact]
    public void Pinning_gives_the_page_address()
    {
        using var memoryPool = new PagePoolMemoryPool();
        using IMemoryOwner<byte> owner = memoryPool.Rent();
        using MemoryHandle pin = owner.Memory.Pin();
        unsafe
        {
            Assert.Equal(((NetmemMemoryManager)owner).Page.PageAddress, (nint)pin.Pointer);
        }
    }

    [Fact]
    public void Renting_more_than_a_page_is_refused()
    {
        using var memoryPool = new PagePoolMemoryPool();
        ArgumentOutOfRangeException e = Assert.Throws<ArgumentOutOfRangeException>(() => memoryPool.Rent(4097));
        Assert.Contains("At most 4096 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pool_with_a_consumer_binding_is_refused()
    {
        using var arena = new PageArena(4 << 20);
        var pool = new PagePool(new PagePoolParams { Arena = arena, Napi = new NapiContext() });
        ArgumentException e = Assert.Throws<ArgumentException>(() => new PagePoolMemoryPool(pool));
        Assert.Contains("shared-mode", e.Message, StringComparison.Ordinal);
        pool.Dispose();
    }

    [Fact]
    public void A_manager_over_more_than_the_page_is_refused()
    {
        using var arena = new PageArena(4 << 20);
        var pool = new PagePool(new PagePoolParams { Arena = arena });
        NetmemRef page = pool.AllocNetmem();
        Assert.Throws<ArgumentOutOfRangeException>(() => new NetmemMemoryManager(page, 4097));
        pool.PutFullNetmem(page, allowDirect: false);
        pool.Dispose();
        Assert.True(pool.IsFreed);
    }
}
