using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace Netmem.Benchmarks;

/// <summary>
/// Single-thread page pool paths, mirroring the kernel's <c>bench_page_pool_simple</c>, with the
/// .NET pools a service would otherwise use as peers in the same run. Each benchmark does
/// <see cref="Ops"/> alloc/return pairs per invocation, so the reported time is per pair.
/// </summary>
[MemoryDiagnoser]
[SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet owns the lifetime: GlobalCleanup frees everything.")]
public unsafe class PagePoolBenchmarks
{
    /// <summary>Alloc/return pairs per invocation.</summary>
    public const int Ops = 1024;

    /// <summary>4 KiB, the size of one order-0 page.</summary>
    public const int BlockSize = 4096;

    private PageArena _arena = null!;
    private PagePool _fastPool = null!;
    private PagePool _ringPool = null!;
    private PagePool _slowPool = null!;
    private ConcurrentQueue<nint> _queuePool = null!;

    /// <summary>Pages the arena still had out after cleanup (0 when every page came back).</summary>
    internal int ArenaPagesOutAfterCleanup { get; private set; } = -1;

    [GlobalSetup]
    public void Setup()
    {
        _arena = new PageArena(64L << 20);
        _fastPool = new PagePool(new PagePoolParams { Napi = new NapiContext("bench-fast"), Arena = _arena, Name = "bench-fast" });
        _ringPool = new PagePool(new PagePoolParams { Napi = new NapiContext("bench-ring"), Arena = _arena, Name = "bench-ring" });
        _slowPool = new PagePool(new PagePoolParams { Napi = new NapiContext("bench-slow"), Arena = _arena, Name = "bench-slow" });
        _queuePool = new ConcurrentQueue<nint>();
        for (int i = 0; i < 256; i++)
        {
            _queuePool.Enqueue((nint)NativeMemory.AlignedAlloc(BlockSize, 64));
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _fastPool.Dispose();
        _ringPool.Dispose();
        _slowPool.Dispose();
        ArenaPagesOutAfterCleanup = _arena.PagesOut(0);
        _arena.Dispose();
        while (_queuePool.TryDequeue(out nint block))
        {
            NativeMemory.AlignedFree((void*)block);
        }
    }

    /// <summary>Peer and baseline: <c>ArrayPool&lt;byte&gt;.Shared</c> Rent(4096) then Return.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Ops, Description = "ArrayPool<byte>.Shared Rent(4096)+Return")]
    [SuppressMessage("Performance", "CA1822", Justification = "BenchmarkDotNet runs benchmarks as instance methods of the class.")]
    public long ArrayPool_RentReturn()
    {
        ArrayPool<byte> pool = ArrayPool<byte>.Shared;
        long sum = 0;
        for (int i = 0; i < Ops; i++)
        {
            byte[] b = pool.Rent(BlockSize);
            sum += b.Length;
            pool.Return(b);
        }

        return sum;
    }

    /// <summary>Peer: a <c>ConcurrentQueue&lt;nint&gt;</c> of 4 KiB native blocks, TryDequeue then Enqueue.</summary>
    [Benchmark(OperationsPerInvoke = Ops, Description = "ConcurrentQueue<nint> pool TryDequeue+Enqueue")]
    public long ConcurrentQueuePool_DequeueEnqueue()
    {
        ConcurrentQueue<nint> q = _queuePool;
        long sum = 0;
        for (int i = 0; i < Ops; i++)
        {
            if (!q.TryDequeue(out nint block))
            {
                block = (nint)NativeMemory.AlignedAlloc(BlockSize, 64);
            }

            sum += block;
            q.Enqueue(block);
        }

        return sum;
    }

    /// <summary>Fast path: alloc from the consumer's cache, recycle straight back into it (kernel: page_pool01_fast_path).</summary>
    [Benchmark(OperationsPerInvoke = Ops, Description = "PagePool fast path: AllocNetmem+RecycleDirect")]
    public long PagePool_FastPath_AllocRecycleDirect()
    {
        PagePool pool = _fastPool;
        long sum = 0;
        for (int i = 0; i < Ops; i++)
        {
            NetmemRef r = pool.AllocNetmem();
            sum += (long)r.Value;
            pool.RecycleDirect(r);
        }

        return sum;
    }

    /// <summary>
    /// ptr_ring path: every return goes through the recycle ring (allowDirect: false); the
    /// consumer refills its cache from the ring, 64 at a time, when it runs dry
    /// (kernel: page_pool02_ptr_ring).
    /// </summary>
    [Benchmark(OperationsPerInvoke = Ops, Description = "PagePool ptr_ring path: AllocNetmem+PutNetmem(allowDirect:false)")]
    public long PagePool_PtrRingPath_AllocPutViaRing()
    {
        PagePool pool = _ringPool;
        long sum = 0;
        for (int i = 0; i < Ops; i++)
        {
            NetmemRef r = pool.AllocNetmem();
            sum += (long)r.Value;
            pool.PutNetmem(r, -1, allowDirect: false);
        }

        return sum;
    }

    /// <summary>
    /// Slow path: an extra page reference stops recycling, so each put releases the page and the
    /// last page reference frees it to the arena; the pool refills from the arena in bulks of 64
    /// (kernel: page_pool03_slow, get_page + page_pool_put_page + put_page).
    /// </summary>
    [Benchmark(OperationsPerInvoke = Ops, Description = "PagePool slow path: alloc + release to arena (get_page/put/put_page)")]
    public long PagePool_SlowPath_ReleaseToArena()
    {
        PagePool pool = _slowPool;
        long sum = 0;
        for (int i = 0; i < Ops; i++)
        {
            NetmemRef r = pool.AllocNetmem();
            sum += (long)r.Value;
            PageArena.GetPage(r);
            pool.PutNetmem(r, -1, allowDirect: false);
            PageArena.PutPage(r);
        }

        return sum;
    }

    /// <summary>The arena alone: one page Alloc then Free under the order's lock (what the slow path pays per page, unbatched).</summary>
    [Benchmark(OperationsPerInvoke = Ops, Description = "PageArena Alloc(0)+Free")]
    public long PageArena_AllocFree()
    {
        PageArena arena = _arena;
        long sum = 0;
        for (int i = 0; i < Ops; i++)
        {
            NetmemRef r = arena.Alloc(0);
            sum += (long)r.Value;
            arena.Free(r);
        }

        return sum;
    }
}
