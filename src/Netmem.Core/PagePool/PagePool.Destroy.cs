using System.Runtime.InteropServices;
using Netmem.Diagnostics;
using Netmem.Providers;

namespace Netmem;

public sealed unsafe partial class PagePool
{
    private ITimer? _retryTimer;
    private PagePoolStats? _finalStats;
    private readonly TaskCompletionSource _freed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private DateTimeOffset _lastStalledReport;
    private int _stalledReports;

    /// <summary>When <see cref="Dispose"/> detached the pool, or null while it is live.</summary>
    public DateTimeOffset? DetachedAt { get; private set; }

    /// <summary>How many stalled-shutdown reports the lingering pool has made.</summary>
    public int StalledShutdownReports => Volatile.Read(ref _stalledReports);

    /// <summary>Completes when a destroyed pool has every netmem back and has freed itself.</summary>
    public Task Freed => _freed.Task;

    /// <summary>
    /// Destroys the pool: detaches it, drains the alloc cache and the ring back to the arena or
    /// provider, and frees it at once when nothing is in flight. Otherwise the pool lingers,
    /// retries every <see cref="PagePoolParams.DestroyRetryPeriod"/>, reports a stalled shutdown
    /// every <see cref="PagePoolParams.StalledReportPeriod"/>, and frees itself when the last
    /// netmem comes back; a netmem returned after destroy is released, never recycled. The
    /// consumer must have stopped allocating before this is called.
    /// </summary>
#pragma warning disable CA1816 // Memory is freed by the finalizer on purpose; see ~PagePool.
    public void Dispose()
    {
        if (Interlocked.CompareExchange(ref _destroyState, 1, 0) != 0)
        {
            return;
        }

        DetachedAt = TimeProvider.GetUtcNow();
        _lastStalledReport = DetachedAt.Value;
        FinishFragPage();
        DrainAllocCaches();
        DrainRing();
        if (TryFinishDestroy())
        {
            return;
        }

        ITimer timer = TimeProvider.CreateTimer(static s => ((PagePool)s!).RetryDestroy(), this, _p.DestroyRetryPeriod, _p.DestroyRetryPeriod);
        Volatile.Write(ref _retryTimer, timer);

        // The last netmem may have come back between the check and arming the timer: then a
        // returner freed the pool, and it may have looked for the timer before it was stored.
        // Whoever sees the pool freed disposes the timer (twice is harmless), so it never runs on.
        if (TryFinishDestroy())
        {
            timer.Dispose();
        }
    }
#pragma warning restore CA1816

    /// <summary>One retry of a lingering destroy: drain what raced into the ring, check, maybe report.</summary>
    private void RetryDestroy()
    {
        if (Volatile.Read(ref _destroyState) != 1)
        {
            return;
        }

        DrainRing();
        PagePoolStats s = Snapshot();
        if (NetmemEventSource.Log.LifecycleOn())
        {
            NetmemEventSource.Log.PagePoolRelease(_id, s.Inflight, s.HoldCount, s.ReleaseCount);
        }

        if (TryFinishDestroy())
        {
            return;
        }

        DateTimeOffset now = TimeProvider.GetUtcNow();
        if (now - _lastStalledReport >= _p.StalledReportPeriod)
        {
            _lastStalledReport = now;
            Interlocked.Increment(ref _stalledReports);
            if (NetmemEventSource.Log.LifecycleOn())
            {
                NetmemEventSource.Log.PagePoolStalledShutdown(_id, s.Inflight, (long)(now - DetachedAt!.Value).TotalSeconds);
            }
        }
    }

    private void ReleaseAfterDestroy(NetmemRef netmem)
    {
        ReleaseNetmem(netmem);
        TryFinishDestroy();
    }

    /// <summary>Frees the pool if nothing is in flight. Exactly one caller wins.</summary>
    private bool TryFinishDestroy()
    {
        if (_stats.Inflight() != 0 || Interlocked.CompareExchange(ref _destroyState, 2, 1) != 1)
        {
            return Volatile.Read(ref _destroyState) == 2;
        }

        Volatile.Read(ref _retryTimer)?.Dispose();
        try
        {
            if (_mp is not null)
            {
                // A provider may refuse loudly here (a devmem binding freed with net_iovs still
                // out throws EBUSY from its last put); the pool still finishes freeing itself and
                // the toggle still counts down, and the exception reaches the caller.
                try
                {
                    _mp.Destroy(this);
                }
                finally
                {
                    MemoryProviderToggle.Decrement();
                }
            }
        }
        finally
        {
            PagePoolStats s = Snapshot();
            _finalStats = s;
            if (NetmemEventSource.Log.LifecycleOn())
            {
                NetmemEventSource.Log.PagePoolDestroyed(_id, s.HoldCount, s.ReleaseCount);
            }

            NetmemMeter.PoolFreed(this, s);
            PagePoolRegistry.Unregister(_id);
            _freed.TrySetResult();
        }

        return true;
    }

    private void DrainAllocCaches()
    {
        for (int i = 0; i < _own->Count; i++)
        {
            ReleaseNetmem(new NetmemRef(_cache[i]));
        }

        _own->Count = 0;
        for (int c = 0; c < _cpuCount; c++)
        {
            CpuCache* cc = _cpuCaches + c;
            SpinWait spin = default;
            while (Interlocked.CompareExchange(ref cc->Lock, 1, 0) != 0)
            {
                spin.SpinOnce();
            }

            for (int i = 0; i < cc->Count; i++)
            {
                ReleaseNetmem(new NetmemRef(cc->Slots[i]));
            }

            cc->Count = 0;
            Volatile.Write(ref cc->Lock, 0);
        }
    }

    private void DrainRing()
    {
        Span<nuint> batch = stackalloc nuint[RefillBatch];
        int n;
        while ((n = _ring.DequeueBurst(batch)) != 0)
        {
            for (int i = 0; i < n; i++)
            {
                ReleaseNetmem(new NetmemRef(batch[i]));
            }
        }
    }

    /// <summary>
    /// Unmanaged memory is freed only when the pool object is unreachable: a thread returning
    /// the last netmem may still be finishing its bookkeeping when the pool frees itself.
    /// </summary>
    ~PagePool() => FreeMemory();

    private int _memoryFreed;

    private void FreeMemory()
    {
        if (Interlocked.Exchange(ref _memoryFreed, 1) != 0)
        {
            return;
        }

        NativeMemory.AlignedFree(_cache);
        NativeMemory.AlignedFree(_own);
        if (_cpuCaches != null)
        {
            for (int i = 0; i < _cpuCount; i++)
            {
                NativeMemory.AlignedFree(_cpuCaches[i].Slots);
            }

            NativeMemory.AlignedFree(_cpuCaches);
        }

        // A constructor that refused its parameters threw before the ring and counters existed,
        // and the finalizer still runs on that half-built object: dereferencing them here threw
        // on the finalizer thread and took the process down.
        _ring?.Dispose();
        _stats?.Dispose();
    }
}
