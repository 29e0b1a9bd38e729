using System.Diagnostics.Tracing;
using System.Runtime.CompilerServices;

namespace Netmem.Diagnostics;

/// <summary>
/// Netmem's tracepoints, named after the kernel's page pool and devmem tracepoints, for EventPipe
/// (<c>dotnet-trace</c>, <c>netmem trace</c>) and in-process <see cref="EventListener"/>s.
/// </summary>
/// <remarks>
/// Two keywords split the cost: <see cref="Keywords.Lifecycle"/> (pools, bindings, queues: rare)
/// and <see cref="Keywords.Netmem"/> (one event per netmem entering or leaving a pool: hot). Every
/// call site tests <see cref="EventSource.IsEnabled(EventLevel, EventKeywords)"/> inline first
/// and computes no argument when no one listens; payloads are written with
/// <see cref="EventSource.WriteEventCore"/>, so an enabled event allocates nothing either.
/// </remarks>
[EventSource(Name = SourceName)]
public sealed unsafe class NetmemEventSource : EventSource
{
    /// <summary>The provider name to enable: <c>Netmem</c>.</summary>
    public const string SourceName = "Netmem";

    public static readonly NetmemEventSource Log = new();

    private NetmemEventSource() : base(EventSourceSettings.EtwSelfDescribingEventFormat)
    {
    }

    /// <summary>Event keywords.</summary>
    public static class Keywords
    {
        /// <summary>Pool, binding and queue lifecycle.</summary>
        public const EventKeywords Lifecycle = (EventKeywords)0x1;

        /// <summary>Per-netmem hold and release (high volume).</summary>
        public const EventKeywords Netmem = (EventKeywords)0x2;
    }

    public const int PoolCreatedId = 1;
    public const int StateHoldId = 2;
    public const int StateReleaseId = 3;
    public const int ReleaseId = 4;
    public const int StalledShutdownId = 5;
    public const int PoolDestroyedId = 6;
    public const int BindingCreatedId = 7;
    public const int BindingDestroyedId = 8;
    public const int QueueBoundId = 9;
    public const int QueueUnboundId = 10;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool LifecycleOn() => IsEnabled(EventLevel.Informational, Keywords.Lifecycle);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool NetmemOn() => IsEnabled(EventLevel.Verbose, Keywords.Netmem);

    [NonEvent]
    internal void PoolCreated(PagePool pool)
    {
        if (LifecycleOn())
        {
            PagePoolCreated(pool.Id, pool.Params.Ifindex, pool.Params.Queue?.Index ?? -1, pool.Params.Napi?.Id ?? 0, pool.Order, pool.Params.PoolSize, pool.MemoryProvider is null ? 0 : 1, pool.Name);
        }
    }

    /// <summary>A page pool was created (the kernel's page-pool-add notification).</summary>
    [Event(PoolCreatedId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    public void PagePoolCreated(int poolId, int ifindex, int queue, int napiId, int order, int poolSize, int hasProvider, string name)
    {
        name ??= string.Empty;
        fixed (char* n = name)
        {
            EventData* d = stackalloc EventData[8];
            Set(d, 0, &poolId);
            Set(d, 1, &ifindex);
            Set(d, 2, &queue);
            Set(d, 3, &napiId);
            Set(d, 4, &order);
            Set(d, 5, &poolSize);
            Set(d, 6, &hasProvider);
            d[7].DataPointer = (nint)n;
            d[7].Size = (name.Length + 1) * 2;
            WriteEventCore(PoolCreatedId, 8, d);
        }
    }

    /// <summary>A netmem entered the pool from the arena or provider (<c>page_pool_state_hold</c>).</summary>
    [Event(StateHoldId, Level = EventLevel.Verbose, Keywords = Keywords.Netmem)]
    public void PagePoolStateHold(int poolId, ulong netmem, ulong pfn, ulong hold)
    {
        EventData* d = stackalloc EventData[4];
        Set(d, 0, &poolId);
        Set(d, 1, &netmem);
        Set(d, 2, &pfn);
        Set(d, 3, &hold);
        WriteEventCore(StateHoldId, 4, d);
    }

    /// <summary>A netmem left the pool to the arena or provider (<c>page_pool_state_release</c>).</summary>
    [Event(StateReleaseId, Level = EventLevel.Verbose, Keywords = Keywords.Netmem)]
    public void PagePoolStateRelease(int poolId, ulong netmem, ulong pfn, ulong release)
    {
        EventData* d = stackalloc EventData[4];
        Set(d, 0, &poolId);
        Set(d, 1, &netmem);
        Set(d, 2, &pfn);
        Set(d, 3, &release);
        WriteEventCore(StateReleaseId, 4, d);
    }

    /// <summary>A destroyed pool checked its netmems in flight (<c>page_pool_release</c>).</summary>
    [Event(ReleaseId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    public void PagePoolRelease(int poolId, long inflight, ulong hold, ulong release)
    {
        EventData* d = stackalloc EventData[4];
        Set(d, 0, &poolId);
        Set(d, 1, &inflight);
        Set(d, 2, &hold);
        Set(d, 3, &release);
        WriteEventCore(ReleaseId, 4, d);
    }

    /// <summary>A destroyed pool still waits for netmems after a long time.</summary>
    [Event(StalledShutdownId, Level = EventLevel.Warning, Keywords = Keywords.Lifecycle)]
    public void PagePoolStalledShutdown(int poolId, long inflight, long secondsSinceDetach)
    {
        EventData* d = stackalloc EventData[3];
        Set(d, 0, &poolId);
        Set(d, 1, &inflight);
        Set(d, 2, &secondsSinceDetach);
        WriteEventCore(StalledShutdownId, 3, d);
    }

    /// <summary>A destroyed pool got everything back and freed itself (page-pool-del).</summary>
    [Event(PoolDestroyedId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    public void PagePoolDestroyed(int poolId, ulong hold, ulong release)
    {
        EventData* d = stackalloc EventData[3];
        Set(d, 0, &poolId);
        Set(d, 1, &hold);
        Set(d, 2, &release);
        WriteEventCore(PoolDestroyedId, 3, d);
    }

    /// <summary>A dmabuf binding was created.</summary>
    [Event(BindingCreatedId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    public void DmabufBindingCreated(int bindingId, long size, int chunks, int ifindex)
    {
        EventData* d = stackalloc EventData[4];
        Set(d, 0, &bindingId);
        Set(d, 1, &size);
        Set(d, 2, &chunks);
        Set(d, 3, &ifindex);
        WriteEventCore(BindingCreatedId, 4, d);
    }

    /// <summary>A dmabuf binding was freed; <paramref name="outstanding"/> netmems were still out (should be 0).</summary>
    [Event(BindingDestroyedId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    public void DmabufBindingDestroyed(int bindingId, long size, long avail, long outstanding)
    {
        EventData* d = stackalloc EventData[4];
        Set(d, 0, &bindingId);
        Set(d, 1, &size);
        Set(d, 2, &avail);
        Set(d, 3, &outstanding);
        WriteEventCore(BindingDestroyedId, 4, d);
    }

    /// <summary>A binding was installed on an rx queue.</summary>
    [Event(QueueBoundId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    public void QueueBound(int ifindex, int queue, int bindingId)
    {
        WriteEvent(QueueBoundId, ifindex, queue, bindingId);
    }

    /// <summary>A binding was removed from an rx queue.</summary>
    [Event(QueueUnboundId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    public void QueueUnbound(int ifindex, int queue, int bindingId)
    {
        WriteEvent(QueueUnboundId, ifindex, queue, bindingId);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Set<T>(EventData* d, int i, T* value)
        where T : unmanaged
    {
        d[i].DataPointer = (nint)value;
        d[i].Size = sizeof(T);
    }
}
