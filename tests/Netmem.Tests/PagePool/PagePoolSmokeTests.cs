using Netmem;
using Xunit;

namespace Netmem.Tests.PagePools;

public sealed class PagePoolSmokeTests
{
    [Fact]
    public void Alloc_then_direct_recycle_reuses_the_same_page_from_the_cache()
    {
        using var arena = new PageArena(4 << 20);
        var napi = new NapiContext();
        var pool = new PagePool(new PagePoolParams { Napi = napi, Arena = arena, Name = "smoke" });
        NetmemRef a = pool.AllocNetmem();
        Assert.True(a.IsPage);
        pool.RecycleDirect(a);
        NetmemRef b = pool.AllocNetmem();
        Assert.Equal(a, b);
        PagePoolStats s = pool.GetStats();
        Assert.Equal(1UL, s.AllocSlow);
        Assert.Equal(1UL, s.AllocFast);
        Assert.Equal(1UL, s.RecycleCached);
        Assert.Equal(64L, s.Inflight);
        pool.RecycleDirect(b);
        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.Equal(0L, pool.GetStats().Inflight);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }
}
