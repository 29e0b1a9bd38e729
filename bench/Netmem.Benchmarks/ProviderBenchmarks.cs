using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Netmem.Devmem;
using Netmem.Net;
using Netmem.Providers;

namespace Netmem.Benchmarks;

/// <summary>
/// The page pool with and without the devmem memory provider, in one run.
/// </summary>
/// <remarks>
/// <para><b>FastPath</b>: steady-state owned-mode alloc + <see cref="PagePool.RecycleDirect"/>
/// of a burst of 32 (the alloc cache never runs dry): a pool serving <c>net_iov</c>s from a
/// dmabuf binding against a pool of system pages. Target: provider pool within 1.2x.</para>
/// <para><b>RingPath</b>: a burst of 64 allocated, then returned with direct recycling off, so
/// every burst goes through the ring and the next refills the cache from it; provider pool
/// against system pages.</para>
/// <para><b>Toggle</b>: the system-page fast path with the process-wide provider toggle off,
/// and on (another pool, serving <c>net_iov</c>s, alive in the process). Target: at most 5%.</para>
/// One operation is one alloc plus one return.
/// </remarks>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
[MedianColumn]
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "BenchmarkDotNet owns the lifetime: [GlobalCleanup] disposes them.")]
public class ProviderBenchmarks
{
    private const int FastBurst = 32;
    private const int RingBurst = PagePool.RefillBatch;
    private const int Rounds = 64;

    private PageArena? _arena;
    private DmabufRegion? _region;
    private DmabufBinding? _binding;
    private PagePool _pool = null!;
    private PagePool? _otherProviderPool;

    [GlobalSetup(Targets = [nameof(SystemPages), nameof(SystemPagesToggleOff), nameof(SystemPagesRing)])]
    public void SetupSystem()
    {
        _pool = NewSystemPool();
        Warm(_pool);
        Check(MemoryProviderToggle.Count == 0, "the toggle must be off");
    }

    [GlobalSetup(Targets = [nameof(ProviderNetIovs), nameof(ProviderNetIovsRing)])]
    public void SetupProvider()
    {
        _pool = NewProviderPool();
        Warm(_pool);
        Check(_pool.MemoryProvider is DevmemProvider, "the pool must serve net_iovs");
    }

    [GlobalSetup(Target = nameof(SystemPagesToggleOn))]
    public void SetupSystemToggleOn()
    {
        _otherProviderPool = NewProviderPool();
        Warm(_otherProviderPool);
        _pool = NewSystemPool();
        Warm(_pool);
        Check(MemoryProviderToggle.IsEnabled, "the toggle must be on");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _pool.Dispose();
        _otherProviderPool?.Dispose();
        _binding?.Put();
        _region?.Dispose();
        _arena?.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = FastBurst * Rounds)]
    [BenchmarkCategory("FastPath")]
    public nuint SystemPages() => FastCycle(_pool);

    [Benchmark(OperationsPerInvoke = FastBurst * Rounds)]
    [BenchmarkCategory("FastPath")]
    public nuint ProviderNetIovs() => FastCycle(_pool);

    [Benchmark(Baseline = true, OperationsPerInvoke = RingBurst * Rounds)]
    [BenchmarkCategory("RingPath")]
    public nuint SystemPagesRing() => RingCycle(_pool);

    [Benchmark(OperationsPerInvoke = RingBurst * Rounds)]
    [BenchmarkCategory("RingPath")]
    public nuint ProviderNetIovsRing() => RingCycle(_pool);

    [Benchmark(Baseline = true, OperationsPerInvoke = FastBurst * Rounds)]
    [BenchmarkCategory("Toggle")]
    public nuint SystemPagesToggleOff() => FastCycle(_pool);

    [Benchmark(OperationsPerInvoke = FastBurst * Rounds)]
    [BenchmarkCategory("Toggle")]
    public nuint SystemPagesToggleOn() => FastCycle(_pool);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nuint FastCycle(PagePool pool)
    {
        Span<NetmemRef> held = stackalloc NetmemRef[FastBurst];
        nuint sum = 0;
        for (int r = 0; r < Rounds; r++)
        {
            for (int i = 0; i < held.Length; i++)
            {
                held[i] = pool.AllocNetmem();
            }

            for (int i = 0; i < held.Length; i++)
            {
                sum += held[i].Value;
                pool.RecycleDirect(held[i]);
            }
        }

        return sum;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static nuint RingCycle(PagePool pool)
    {
        Span<NetmemRef> held = stackalloc NetmemRef[RingBurst];
        nuint sum = 0;
        for (int r = 0; r < Rounds; r++)
        {
            for (int i = 0; i < held.Length; i++)
            {
                held[i] = pool.AllocNetmem();
            }

            for (int i = 0; i < held.Length; i++)
            {
                sum += held[i].Value;
                pool.PutNetmem(held[i], -1, allowDirect: false);
            }
        }

        return sum;
    }

    private PagePool NewSystemPool()
    {
        _arena = new PageArena(64 << 20);
        return new PagePool(new PagePoolParams
        {
            Napi = new NapiContext("bench-system"),
            Arena = _arena,
            Flags = PagePoolFlags.DmaMap,
            Name = "bench-system",
        });
    }

    private PagePool NewProviderPool()
    {
        _region = DmabufRegion.CreateMemfd("bench-devmem", 16L << 20);
        _binding = DmabufBinding.Create(_region, new DmaDevice("bench-nic"));
        var queue = new RxQueue(0) { MemoryProvider = new DevmemProvider(_binding) };
        return new PagePool(new PagePoolParams
        {
            Napi = new NapiContext("bench-devmem"),
            Queue = queue,
            Flags = PagePoolFlags.DmaMap | PagePoolFlags.AllowUnreadableNetmem,
            Name = "bench-devmem",
        });
    }

    /// <summary>Runs both paths once so the pool holds a full burst of cache and ring entries before timing.</summary>
    private static void Warm(PagePool pool)
    {
        FastCycle(pool);
        RingCycle(pool);
        FastCycle(pool);
    }

    private static void Check(bool condition, string what)
    {
        if (!condition)
        {
            throw new InvalidOperationException("benchmark setup: " + what);
        }
    }
}
