using Netmem;

namespace Netmem.Tool;

/// <summary>
/// The <c>netmem</c> command. For now: a page-pool workout that allocates, recycles through the
/// cache and the ring, and prints the pool's counters.
/// </summary>
public static class Program
{
    public static int Main()
    {
        var napi = new NapiContext("main");
        napi.BindToCurrentThread();
        var pool = new PagePool(new PagePoolParams { Napi = napi, Name = "netmem-main", Flags = PagePoolFlags.DmaMap });
        Span<NetmemRef> batch = stackalloc NetmemRef[256];
        for (int round = 0; round < 10_000; round++)
        {
            int n = pool.AllocBulk(batch);
            for (int i = 0; i < n; i++)
            {
                batch[i].GetPageSpan()[0] = (byte)round;
            }

            // Half back through the alloc cache (consumer), half through the ring (as a remote CPU would).
            for (int i = 0; i < n / 2; i++)
            {
                pool.RecycleDirect(batch[i]);
            }

            pool.PutBulk(batch[(n / 2)..n]);
        }

        PagePoolStats s = pool.GetStats();
        Console.WriteLine($"pool {pool.Id} '{pool.Name}': {s}");
        napi.Unbind();
        pool.Dispose();
        Console.WriteLine($"after destroy: inflight {pool.GetStats().Inflight}, freed {pool.IsFreed}");
        return pool.IsFreed ? 0 : 1;
    }
}
