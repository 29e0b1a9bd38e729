using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using BenchmarkDotNet.Attributes;

namespace Netmem.Benchmarks;

/// <summary>
/// Shared mode (no consumer binding) used from two threads at once, each doing
/// <see cref="OpsPerThread"/> alloc/put pairs, against <c>ArrayPool&lt;byte&gt;.Shared</c> doing
/// the same. The time per operation is per pair, across both threads.
/// </summary>
[MemoryDiagnoser]
[SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet owns the lifetime: GlobalCleanup frees everything.")]
public class PagePoolSharedBenchmarks
{
    /// <summary>Alloc/put pairs per thread per invocation.</summary>
    public const int OpsPerThread = 1 << 16;

    /// <summary>Threads working at once: the benchmark thread and one worker.</summary>
    public const int Threads = 2;

    private PageArena _arena = null!;
    private PagePool _pool = null!;
    private SpinWorker _worker = null!;
    private Action _pagePoolLoop = null!;
    private Action _arrayPoolLoop = null!;

    /// <summary>Pages the arena still had out after cleanup (0 when every page came back).</summary>
    internal int ArenaPagesOutAfterCleanup { get; private set; } = -1;

    [GlobalSetup]
    public void Setup()
    {
        _arena = new PageArena(64L << 20);
        _pool = new PagePool(new PagePoolParams { Arena = _arena, Name = "bench-shared" });
        _worker = new SpinWorker("bench-shared-peer");
        _pagePoolLoop = PagePoolLoop;
        _arrayPoolLoop = ArrayPoolLoop;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _worker.Dispose();
        _pool.Dispose();
        ArenaPagesOutAfterCleanup = _arena.PagesOut(0);
        _arena.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = OpsPerThread * Threads, Description = "2 threads: ArrayPool<byte>.Shared Rent(4096)+Return")]
    public void ArrayPool_TwoThreads()
    {
        _worker.Start(_arrayPoolLoop);
        ArrayPoolLoop();
        _worker.Wait();
    }

    [Benchmark(OperationsPerInvoke = OpsPerThread * Threads, Description = "2 threads: PagePool (shared) AllocNetmem+PutNetmem")]
    public void PagePool_Shared_TwoThreads()
    {
        _worker.Start(_pagePoolLoop);
        PagePoolLoop();
        _worker.Wait();
    }

    private void PagePoolLoop()
    {
        PagePool pool = _pool;
        for (int i = 0; i < OpsPerThread; i++)
        {
            pool.PutNetmem(pool.AllocNetmem(), -1, allowDirect: false);
        }
    }

    private static void ArrayPoolLoop()
    {
        ArrayPool<byte> pool = ArrayPool<byte>.Shared;
        for (int i = 0; i < OpsPerThread; i++)
        {
            pool.Return(pool.Rent(PagePoolBenchmarks.BlockSize));
        }
    }
}
