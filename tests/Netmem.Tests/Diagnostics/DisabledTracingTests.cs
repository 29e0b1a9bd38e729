using System.Diagnostics.Tracing;
using Netmem.Diagnostics;
using Xunit;

namespace Netmem.Tests.Diagnostics;

/// <summary>With no one listening (or only to lifecycle events), the pool's hot paths compute and allocate nothing for tracing.</summary>
[Collection(DiagnosticsCollection.Name)]
public sealed class DisabledTracingTests
{
    private const int Rounds = 20_000;

    [Fact]
    public void With_no_listener_the_source_is_off_and_alloc_recycle_allocates_nothing()
    {
        Assert.False(NetmemEventSource.Log.IsEnabled());
        Assert.False(NetmemEventSource.Log.LifecycleOn());
        Assert.False(NetmemEventSource.Log.NetmemOn());

        Assert.Equal(0, MeasureAllocRecycleBytes());
    }

    [Fact]
    public void With_a_lifecycle_listener_alloc_recycle_still_allocates_nothing()
    {
        using var listener = new RecordingListener(EventLevel.Informational, NetmemEventSource.Keywords.Lifecycle);
        Assert.True(NetmemEventSource.Log.LifecycleOn());
        Assert.False(NetmemEventSource.Log.NetmemOn());

        Assert.Equal(0, MeasureAllocRecycleBytes());
    }

    /// <summary>Bytes the current thread allocates over a steady-state AllocNetmem/RecycleDirect loop, including slow-path refills.</summary>
    private static long MeasureAllocRecycleBytes()
    {
        using var arena = new PageArena(4 << 20);
        var napi = new NapiContext();
        napi.BindToCurrentThread();
        var pool = new PagePool(new PagePoolParams { Napi = napi, Arena = arena, Name = "no-alloc" });
        Span<NetmemRef> batch = stackalloc NetmemRef[200];
        Cycle(pool, batch);

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < Rounds; i++)
        {
            NetmemRef r = pool.AllocNetmem();
            pool.RecycleDirect(r);
        }

        Cycle(pool, batch);
        long after = GC.GetAllocatedBytesForCurrentThread();

        napi.Unbind();
        pool.Dispose();
        return after - before;
    }

    /// <summary>Allocates more than the cache holds and returns it all, so the ring and slow path run too.</summary>
    private static void Cycle(PagePool pool, Span<NetmemRef> batch)
    {
        for (int i = 0; i < batch.Length; i++)
        {
            batch[i] = pool.AllocNetmem();
        }

        foreach (NetmemRef r in batch)
        {
            pool.RecycleDirect(r);
        }
    }
}
