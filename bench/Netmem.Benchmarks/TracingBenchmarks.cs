using System.Diagnostics.Tracing;
using BenchmarkDotNet.Attributes;
using Netmem.Diagnostics;

namespace Netmem.Benchmarks;

/// <summary>
/// The page-pool fast path (owned mode: AllocNetmem then RecycleDirect through the alloc cache)
/// with the Netmem EventSource off, and with an in-process listener enabling only the
/// Lifecycle keyword at Informational: the per-netmem call sites must stay one inlined
/// <c>IsEnabled</c> check either way.
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet disposes through GlobalCleanup.")]
public class TracingBenchmarks
{
    private const int Batch = 1024;

    private PageArena? _arena;
    private NapiContext? _napi;
    private PagePool? _pool;
    private LifecycleListener? _listener;

    [GlobalSetup(Targets = [nameof(TracingOff), nameof(TracingOffControl)])]
    public void SetupOff() => CreatePool();

    [GlobalSetup(Target = nameof(LifecycleListenerOn))]
    public void SetupLifecycle()
    {
        _listener = new LifecycleListener();
        if (!NetmemEventSource.Log.IsEnabled(EventLevel.Informational, NetmemEventSource.Keywords.Lifecycle))
        {
            throw new InvalidOperationException("the lifecycle listener did not enable the source");
        }

        CreatePool();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _napi!.Unbind();
        _pool!.Dispose();
        _arena!.Dispose();
        _listener?.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    public void TracingOff() => AllocRecycle();

    [Benchmark(OperationsPerInvoke = Batch)]
    public void LifecycleListenerOn() => AllocRecycle();

    /// <summary>The baseline again, in its own process: shows the run-to-run noise of this machine.</summary>
    [Benchmark(OperationsPerInvoke = Batch)]
    public void TracingOffControl() => AllocRecycle();

    private void AllocRecycle()
    {
        PagePool pool = _pool!;
        for (int i = 0; i < Batch; i++)
        {
            pool.RecycleDirect(pool.AllocNetmem());
        }
    }

    private void CreatePool()
    {
        _arena = new PageArena(16 << 20);
        _napi = new NapiContext("bench");
        _napi.BindToCurrentThread();
        _pool = new PagePool(new PagePoolParams { Napi = _napi, Arena = _arena, Name = "bench-tracing" });

        // Warm the alloc cache so the loop stays on the fast path.
        _pool.RecycleDirect(_pool.AllocNetmem());
    }

    /// <summary>Enables Netmem lifecycle events only, and drops them.</summary>
    private sealed class LifecycleListener : EventListener
    {
        public LifecycleListener() => EnableEvents(NetmemEventSource.Log, EventLevel.Informational, NetmemEventSource.Keywords.Lifecycle);

        protected override void OnEventWritten(EventWrittenEventArgs eventData)
        {
        }
    }
}
