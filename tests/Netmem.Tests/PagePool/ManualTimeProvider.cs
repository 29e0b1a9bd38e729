namespace Netmem.Tests.PagePools;

/// <summary>
/// A clock that moves only when a test calls <see cref="Advance"/>. Timers it creates fire
/// synchronously, on the caller of <see cref="Advance"/>, once for each period that elapsed, so
/// deferred-destroy retries and stalled reports are exercised without sleeping.
/// </summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly Lock _lock = new();
    private readonly List<ManualTimer> _timers = [];
    private DateTimeOffset _now;

    public ManualTimeProvider(DateTimeOffset? start = null) => _now = start ?? new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Timers created and not disposed.</summary>
    public int ActiveTimers
    {
        get
        {
            lock (_lock)
            {
                return _timers.Count(t => !t.Disposed);
            }
        }
    }

    public override DateTimeOffset GetUtcNow()
    {
        lock (_lock)
        {
            return _now;
        }
    }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var t = new ManualTimer(this, callback, state);
        lock (_lock)
        {
            _timers.Add(t);
            t.Arm(_now, dueTime, period);
        }

        return t;
    }

    /// <summary>Moves the clock forward in steps, firing each timer at every due time it passes.</summary>
    public void Advance(TimeSpan by)
    {
        DateTimeOffset end;
        lock (_lock)
        {
            end = _now + by;
        }

        while (true)
        {
            ManualTimer? next = null;
            lock (_lock)
            {
                foreach (ManualTimer t in _timers)
                {
                    if (!t.Disposed && t.Due is { } due && due <= end && (next is null || due < next.Due))
                    {
                        next = t;
                    }
                }

                if (next is null)
                {
                    _now = end;
                    return;
                }

                _now = next.Due!.Value;
                next.Due = next.Period > TimeSpan.Zero ? _now + next.Period : null;
            }

            // Fire outside the lock: the callback may read the clock or dispose its timer.
            next.Fire();
        }
    }

    private sealed class ManualTimer(ManualTimeProvider owner, TimerCallback callback, object? state) : ITimer
    {
        public DateTimeOffset? Due { get; set; }

        public TimeSpan Period { get; private set; }

        public bool Disposed { get; private set; }

        public void Arm(DateTimeOffset now, TimeSpan dueTime, TimeSpan period)
        {
            Period = period == Timeout.InfiniteTimeSpan ? TimeSpan.Zero : period;
            Due = dueTime == Timeout.InfiniteTimeSpan ? null : now + dueTime;
        }

        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            lock (owner._lock)
            {
                if (Disposed)
                {
                    return false;
                }

                Arm(owner._now, dueTime, period);
                return true;
            }
        }

        public void Dispose()
        {
            lock (owner._lock)
            {
                Disposed = true;
                Due = null;
            }
        }

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
