using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Netmem.Rings;

namespace Netmem.Benchmarks;

/// <summary>
/// One thread allocates, another returns: the shape of an rx queue whose packets are consumed
/// on other threads. The benchmark thread allocates <see cref="Pages"/> buffers and hands each
/// to a long-lived returner thread through an SPSC handoff (a <see cref="PtrRing"/> of 1024,
/// the same for both pools); the returner gives it back to its pool. The time per operation is
/// per page moved through the full cycle; pages/second is its inverse.
/// </summary>
[MemoryDiagnoser]
[SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet owns the lifetime: GlobalCleanup frees everything.")]
public unsafe class PagePoolCrossThreadBenchmarks
{
    /// <summary>Pages per invocation.</summary>
    public const int Pages = 1 << 20;

    private PageArena _arena = null!;
    private PagePool _pool = null!;
    private NapiContext _napi = null!;
    private ConcurrentQueue<nint> _queuePool = null!;
    private PtrRing _handoff = null!;
    private SpinWorker _worker = null!;
    private Action _returnToPagePool = null!;
    private Action _returnToQueuePool = null!;
    private Action _returnToPagePoolBulk = null!;
    private Action _returnToQueuePoolBurst = null!;

    /// <summary>Pages the arena still had out after cleanup (0 when every page came back).</summary>
    internal int ArenaPagesOutAfterCleanup { get; private set; } = -1;

    [GlobalSetup]
    public void Setup()
    {
        _arena = new PageArena(256L << 20);
        _napi = new NapiContext("bench-xthread");
        _pool = new PagePool(new PagePoolParams { Napi = _napi, Arena = _arena, Name = "bench-xthread" });
        _queuePool = new ConcurrentQueue<nint>();
        _handoff = new PtrRing(1024);
        _worker = new SpinWorker("bench-returner");
        _returnToPagePool = ReturnToPagePool;
        _returnToQueuePool = ReturnToQueuePool;
        _returnToPagePoolBulk = ReturnToPagePoolBulk;
        _returnToQueuePoolBurst = ReturnToQueuePoolBurst;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _worker.Dispose();
        _pool.Dispose();
        ArenaPagesOutAfterCleanup = _arena.PagesOut(0);
        _arena.Dispose();
        _handoff.Dispose();
        while (_queuePool.TryDequeue(out nint block))
        {
            NativeMemory.AlignedFree((void*)block);
        }
    }

    /// <summary>Netmem owned pool: the consumer allocates, the remote thread puts with allowDirect: false (through the recycle ring).</summary>
    [Benchmark(OperationsPerInvoke = Pages, Description = "Cross-thread: PagePool (owned) alloc -> remote PutNetmem")]
    public void PagePool_CrossThread()
    {
        AllocAndHandOff(_returnToPagePool);
    }

    /// <summary>Peer: a ConcurrentQueue pool of 4 KiB native blocks; the consumer dequeues, the remote thread enqueues.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Pages, Description = "Cross-thread: ConcurrentQueue<nint> pool TryDequeue -> remote Enqueue")]
    public void ConcurrentQueuePool_CrossThread()
    {
        TakeAndHandOff(_returnToQueuePool);
    }

    /// <summary>
    /// The same traffic, with the returner taking what the handoff holds in bursts of up to 64
    /// and giving them back with <see cref="PagePool.PutBulk"/>: one ring reservation per burst,
    /// as a driver's completion path frees a batch (the kernel's page_pool_put_netmem_bulk).
    /// </summary>
    [Benchmark(OperationsPerInvoke = Pages, Description = "Cross-thread: PagePool (owned) alloc -> remote PutBulk (bursts of <=64)")]
    public void PagePool_CrossThread_PutBulk()
    {
        AllocAndHandOff(_returnToPagePoolBulk);
    }

    /// <summary>The ConcurrentQueue pool with the same burst handoff on the returner (it has no bulk enqueue).</summary>
    [Benchmark(OperationsPerInvoke = Pages, Description = "Cross-thread: ConcurrentQueue<nint> pool, remote Enqueue of bursts of <=64")]
    public void ConcurrentQueuePool_CrossThread_Burst()
    {
        TakeAndHandOff(_returnToQueuePoolBurst);
    }

    /// <summary>The page pool's consumer: allocates every page and hands it to the returner running <paramref name="returner"/>.</summary>
    private void AllocAndHandOff(Action returner)
    {
        _napi.BindToCurrentThread();
        PagePool pool = _pool;
        _worker.Start(returner);
        SpinWait spin = default;
        for (int i = 0; i < Pages; i++)
        {
            nuint v = pool.AllocNetmem().Value;
            while (!_handoff.TryEnqueue(v))
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }

        _worker.Wait();
    }

    /// <summary>The ConcurrentQueue pool's consumer: takes (or makes) every block and hands it to the returner.</summary>
    private void TakeAndHandOff(Action returner)
    {
        ConcurrentQueue<nint> q = _queuePool;
        _worker.Start(returner);
        SpinWait spin = default;
        for (int i = 0; i < Pages; i++)
        {
            if (!q.TryDequeue(out nint block))
            {
                block = (nint)NativeMemory.AlignedAlloc(PagePoolBenchmarks.BlockSize, 64);
            }

            while (!_handoff.TryEnqueue((nuint)block))
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }

        _worker.Wait();
    }

    private void ReturnToPagePoolBulk()
    {
        PagePool pool = _pool;
        Span<nuint> burst = stackalloc nuint[64];
        SpinWait spin = default;
        for (int n = 0; n < Pages;)
        {
            int got = _handoff.DequeueBurst(burst);
            if (got != 0)
            {
                pool.PutBulk(MemoryMarshal.Cast<nuint, NetmemRef>(burst[..got]));
                n += got;
            }
            else
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }

    private void ReturnToQueuePoolBurst()
    {
        ConcurrentQueue<nint> q = _queuePool;
        Span<nuint> burst = stackalloc nuint[64];
        SpinWait spin = default;
        for (int n = 0; n < Pages;)
        {
            int got = _handoff.DequeueBurst(burst);
            if (got != 0)
            {
                for (int i = 0; i < got; i++)
                {
                    q.Enqueue((nint)burst[i]);
                }

                n += got;
            }
            else
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }

    private void ReturnToPagePool()
    {
        PagePool pool = _pool;
        SpinWait spin = default;
        for (int n = 0; n < Pages;)
        {
            if (_handoff.TryDequeue(out nuint v))
            {
                pool.PutNetmem(NetmemRef.FromValue(v), -1, allowDirect: false);
                n++;
            }
            else
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }

    private void ReturnToQueuePool()
    {
        ConcurrentQueue<nint> q = _queuePool;
        SpinWait spin = default;
        for (int n = 0; n < Pages;)
        {
            if (_handoff.TryDequeue(out nuint v))
            {
                q.Enqueue((nint)v);
                n++;
            }
            else
            {
                spin.SpinOnce(sleep1Threshold: -1);
            }
        }
    }
}
