using System.Diagnostics.CodeAnalysis;
using System.Diagnostics.Tracing;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Netmem.Net;

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
/// <para>Introspection from another process: a session that enables the
/// <see cref="Keywords.Introspection"/> keyword (<c>0x4</c>) gets, as it starts, one
/// <c>IntrospectionDump</c> event (<see cref="IntrospectionDumpId"/>) per registered kind
/// (<see cref="RegisterDump"/>), then one <c>IntrospectionDumpCompleted</c>
/// (<see cref="IntrospectionDumpCompletedId"/>); no argument is needed, so
/// <c>dotnet-trace collect -p PID --providers Netmem:0x4:4</c> gets a dump. The provider
/// argument <c>Command=Dump</c> (or <see cref="EventSource.SendCommand"/> with
/// <see cref="DumpCommand"/>) asks for another dump from a session already running. Dumps go to
/// every session with the keyword on, so one that is already listening also sees the dump
/// another session's start causes. <c>netmem pools</c>, <c>trace</c> and <c>top</c> read them.</para>
/// </remarks>
[EventSource(Name = SourceName)]
[UnconditionalSuppressMessage("Trimming", "IL2026:RequiresUnreferencedCode", Justification = "Every event payload is primitives and strings, which EventSource writes without reflection; an event with any other payload type does not belong here.")]
public sealed unsafe class NetmemEventSource : EventSource
{
    /// <summary>The provider name to enable: <c>Netmem</c>.</summary>
    public const string SourceName = "Netmem";

    /// <summary>
    /// The one instance: pass it to <see cref="EventListener.EnableEvents(EventSource, EventLevel, EventKeywords)"/>
    /// in process, or enable the <see cref="SourceName"/> provider from EventPipe. Its event
    /// methods are internal; the library writes the events, a user only listens.
    /// </summary>
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

        /// <summary>Introspection dumps: written when a session enables this keyword, and on <c>Command=Dump</c>.</summary>
        public const EventKeywords Introspection = (EventKeywords)0x4;
    }

    /// <summary>The custom command that asks for a dump through <see cref="EventSource.SendCommand"/>.</summary>
    public const EventCommand DumpCommand = (EventCommand)1;

    /// <summary>The provider argument that asks for a dump: <c>Command=Dump</c>.</summary>
    public const string CommandArgument = "Command";

    /// <summary>The value of <see cref="CommandArgument"/> that asks for a dump.</summary>
    public const string DumpArgumentValue = "Dump";

    /// <summary>Dump kind of <see cref="NetdevIntrospection.PagePoolsJson"/>.</summary>
    public const string PagePoolsDumpKind = "page-pools";

    /// <summary>Dump kind of <see cref="NetdevIntrospection.PagePoolStatsJson"/>.</summary>
    public const string PagePoolStatsDumpKind = "page-pool-stats";

    /// <summary>
    /// Event id of <c>PagePoolCreated</c> (Lifecycle, Informational): a page pool was created, the
    /// kernel's page-pool-add notification. Payload: <c>poolId</c>, <c>ifindex</c>, <c>queue</c>
    /// (-1 for none), <c>napiId</c> (0 for a shared-mode pool), <c>order</c>, <c>poolSize</c>,
    /// <c>hasProvider</c> (1 when a memory provider backs it), <c>name</c>.
    /// </summary>
    public const int PoolCreatedId = 1;

    /// <summary>
    /// Event id of <c>PagePoolStateHold</c> (Netmem, Verbose): a netmem entered the pool from the
    /// arena or provider (<c>page_pool_state_hold</c>). Payload: <c>poolId</c>, <c>netmem</c>,
    /// <c>pfn</c>, <c>hold</c> (the pool's hold count after it).
    /// </summary>
    public const int StateHoldId = 2;

    /// <summary>
    /// Event id of <c>PagePoolStateRelease</c> (Netmem, Verbose): a netmem left the pool to the
    /// arena or provider (<c>page_pool_state_release</c>). Payload: <c>poolId</c>, <c>netmem</c>,
    /// <c>pfn</c>, <c>release</c> (the pool's release count after it).
    /// </summary>
    public const int StateReleaseId = 3;

    /// <summary>
    /// Event id of <c>PagePoolRelease</c> (Lifecycle, Informational): a destroyed pool checked its
    /// netmems in flight (<c>page_pool_release</c>). Payload: <c>poolId</c>, <c>inflight</c>,
    /// <c>hold</c>, <c>release</c>.
    /// </summary>
    public const int ReleaseId = 4;

    /// <summary>
    /// Event id of <c>PagePoolStalledShutdown</c> (Lifecycle, Warning): a destroyed pool still
    /// waits for netmems after a long time. Payload: <c>poolId</c>, <c>inflight</c>,
    /// <c>secondsSinceDetach</c>.
    /// </summary>
    public const int StalledShutdownId = 5;

    /// <summary>
    /// Event id of <c>PagePoolDestroyed</c> (Lifecycle, Informational): a destroyed pool got every
    /// netmem back and freed itself (page-pool-del). Payload: <c>poolId</c>, <c>hold</c>,
    /// <c>release</c>.
    /// </summary>
    public const int PoolDestroyedId = 6;

    /// <summary>
    /// Event id of <c>DmabufBindingCreated</c> (Lifecycle, Informational): a dmabuf binding was
    /// created. Payload: <c>bindingId</c>, <c>size</c> (bytes), <c>chunks</c>, <c>ifindex</c>.
    /// </summary>
    public const int BindingCreatedId = 7;

    /// <summary>
    /// Event id of <c>DmabufBindingDestroyed</c> (Lifecycle, Informational): a dmabuf binding was
    /// freed. Payload: <c>bindingId</c>, <c>size</c> (bytes), <c>avail</c> (bytes free in its
    /// pool), <c>outstanding</c> (net_iovs still out; 0 unless something leaked).
    /// </summary>
    public const int BindingDestroyedId = 8;

    /// <summary>
    /// Event id of <c>QueueBound</c> (Lifecycle, Informational): a binding was installed on an rx
    /// queue. Payload: <c>ifindex</c>, <c>queue</c>, <c>bindingId</c>.
    /// </summary>
    public const int QueueBoundId = 9;

    /// <summary>
    /// Event id of <c>QueueUnbound</c> (Lifecycle, Informational): a binding was removed from an rx
    /// queue. Payload: <c>ifindex</c>, <c>queue</c>, <c>bindingId</c>.
    /// </summary>
    public const int QueueUnboundId = 10;

    /// <summary>
    /// Event id of <c>IntrospectionDump</c> (Introspection, Informational): one dump. Payload:
    /// <c>kind</c> (for example <see cref="PagePoolsDumpKind"/>), <c>json</c> (the dump, or
    /// <c>{"error":...}</c> when its producer threw).
    /// </summary>
    public const int IntrospectionDumpId = 11;

    /// <summary>
    /// Event id of <c>IntrospectionDumpCompleted</c> (Introspection, Informational): a dump is
    /// complete. Payload: <c>kinds</c> (how many <c>IntrospectionDump</c> events came before it).
    /// </summary>
    public const int IntrospectionDumpCompletedId = 12;

    /// <summary>
    /// Event id of <c>OrphanedBindingReleaseFailed</c> (Lifecycle, Error): unbinding a binding
    /// whose owner handle was collected without being disposed failed. Payload: <c>bindingId</c>,
    /// <c>error</c> (the exception's message).
    /// </summary>
    public const int OrphanedBindingReleaseFailedId = 30;

    /// <summary>
    /// Event id of <c>NapiPollException</c> (Lifecycle, Error): a queue's poll loop caught an
    /// unexpected exception, dropped the frame in hand and went on. Payload: <c>ifindex</c>,
    /// <c>device</c>, <c>queue</c>, <c>exceptions</c> (the queue's count so far),
    /// <c>exceptionType</c>, <c>message</c>.
    /// </summary>
    public const int NapiPollExceptionId = 20;

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
    internal void PagePoolCreated(int poolId, int ifindex, int queue, int napiId, int order, int poolSize, int hasProvider, string name)
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
    internal void PagePoolStateHold(int poolId, ulong netmem, ulong pfn, ulong hold)
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
    internal void PagePoolStateRelease(int poolId, ulong netmem, ulong pfn, ulong release)
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
    internal void PagePoolRelease(int poolId, long inflight, ulong hold, ulong release)
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
    internal void PagePoolStalledShutdown(int poolId, long inflight, long secondsSinceDetach)
    {
        EventData* d = stackalloc EventData[3];
        Set(d, 0, &poolId);
        Set(d, 1, &inflight);
        Set(d, 2, &secondsSinceDetach);
        WriteEventCore(StalledShutdownId, 3, d);
    }

    /// <summary>A destroyed pool got everything back and freed itself (page-pool-del).</summary>
    [Event(PoolDestroyedId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    internal void PagePoolDestroyed(int poolId, ulong hold, ulong release)
    {
        EventData* d = stackalloc EventData[3];
        Set(d, 0, &poolId);
        Set(d, 1, &hold);
        Set(d, 2, &release);
        WriteEventCore(PoolDestroyedId, 3, d);
    }

    /// <summary>A dmabuf binding was created.</summary>
    [Event(BindingCreatedId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    internal void DmabufBindingCreated(int bindingId, long size, int chunks, int ifindex)
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
    internal void DmabufBindingDestroyed(int bindingId, long size, long avail, long outstanding)
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
    internal void QueueBound(int ifindex, int queue, int bindingId)
    {
        WriteEvent(QueueBoundId, ifindex, queue, bindingId);
    }

    /// <summary>A binding was removed from an rx queue.</summary>
    [Event(QueueUnboundId, Level = EventLevel.Informational, Keywords = Keywords.Lifecycle)]
    internal void QueueUnbound(int ifindex, int queue, int bindingId)
    {
        WriteEvent(QueueUnboundId, ifindex, queue, bindingId);
    }

    /// <summary>
    /// Unbinding a binding whose owner handle was collected without being disposed failed; the
    /// error is counted in <see cref="Net.DmabufBindingHandle.OrphanedReleaseFailures"/>.
    /// </summary>
    [Event(OrphanedBindingReleaseFailedId, Level = EventLevel.Error, Keywords = Keywords.Lifecycle)]
    internal void OrphanedBindingReleaseFailed(int bindingId, string error)
    {
        WriteEvent(OrphanedBindingReleaseFailedId, bindingId, error ?? string.Empty);
    }

    [NonEvent]
    internal void NapiPollCaught(Netmem.Net.NetDevice device, int queue, long exceptions, Exception e)
    {
        if (IsEnabled(EventLevel.Error, Keywords.Lifecycle))
        {
            NapiPollException(device.Ifindex, device.Name, queue, exceptions, e.GetType().FullName ?? e.GetType().Name, e.Message);
        }
    }

    /// <summary>
    /// A queue's poll loop caught an unexpected exception, dropped the frame in hand and went on
    /// (the kernel's WARN-and-drop); <paramref name="exceptions"/> is the queue's count so far.
    /// </summary>
    [Event(NapiPollExceptionId, Level = EventLevel.Error, Keywords = Keywords.Lifecycle)]
    internal void NapiPollException(int ifindex, string device, int queue, long exceptions, string exceptionType, string message)
    {
        device ??= string.Empty;
        exceptionType ??= string.Empty;
        message ??= string.Empty;
        fixed (char* dn = device)
        fixed (char* t = exceptionType)
        fixed (char* m = message)
        {
            EventData* d = stackalloc EventData[6];
            Set(d, 0, &ifindex);
            d[1].DataPointer = (nint)dn;
            d[1].Size = (device.Length + 1) * 2;
            Set(d, 2, &queue);
            Set(d, 3, &exceptions);
            d[4].DataPointer = (nint)t;
            d[4].Size = (exceptionType.Length + 1) * 2;
            d[5].DataPointer = (nint)m;
            d[5].Size = (message.Length + 1) * 2;
            WriteEventCore(NapiPollExceptionId, 6, d);
        }
    }

    /// <summary>One introspection dump: <paramref name="json"/> is the dump of <paramref name="kind"/>.</summary>
    [Event(IntrospectionDumpId, Level = EventLevel.Informational, Keywords = Keywords.Introspection)]
    internal void IntrospectionDump(string kind, string json)
    {
        kind ??= string.Empty;
        json ??= string.Empty;
        fixed (char* k = kind)
        fixed (char* j = json)
        {
            EventData* d = stackalloc EventData[2];
            d[0].DataPointer = (nint)k;
            d[0].Size = (kind.Length + 1) * 2;
            d[1].DataPointer = (nint)j;
            d[1].Size = (json.Length + 1) * 2;
            WriteEventCore(IntrospectionDumpId, 2, d);
        }
    }

    /// <summary>A dump is complete: <paramref name="kinds"/> <see cref="IntrospectionDump"/> events were written before it.</summary>
    [Event(IntrospectionDumpCompletedId, Level = EventLevel.Informational, Keywords = Keywords.Introspection)]
    internal void IntrospectionDumpCompleted(int kinds)
    {
        WriteEvent(IntrospectionDumpCompletedId, kinds);
    }

    /// <summary>
    /// Registers (or replaces) a dump kind: <paramref name="json"/> is called on the thread that
    /// delivers a dump command and must return a JSON document. Drivers register their own
    /// kinds (<c>queues</c>, <c>devices</c>) next to the built-in <see cref="PagePoolsDumpKind"/>
    /// and <see cref="PagePoolStatsDumpKind"/>.
    /// </summary>
    public static void RegisterDump(string kind, Func<string> json)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentNullException.ThrowIfNull(json);
        DumpRegistry.Register(kind, json);
    }

    /// <summary>Writes every registered dump, then the completion event. Does nothing unless a session enabled <see cref="Keywords.Introspection"/>.</summary>
    [NonEvent]
    internal void WriteDumps()
    {
        if (!IsEnabled(EventLevel.Informational, Keywords.Introspection))
        {
            return;
        }

        var kinds = DumpRegistry.Snapshot();
        foreach ((string kind, Func<string> json) in kinds)
        {
            string text;
            try
            {
                text = json();
            }
#pragma warning disable CA1031 // A failing dump is reported in its event rather than breaking the command.
            catch (Exception e)
#pragma warning restore CA1031
            {
                text = "{\"error\":\"" + JsonEncodedText.Encode(e.Message).Value + "\"}";
            }

            IntrospectionDump(kind, text);
        }

        IntrospectionDumpCompleted(kinds.Length);
    }

    /// <summary>
    /// Dumps when a session enables this source with <see cref="Keywords.Introspection"/> on, on
    /// <c>Command=Dump</c> and on <see cref="DumpCommand"/>; other commands only update enablement.
    /// </summary>
    /// <remarks>
    /// The command does not say which keywords its own session asked for, only what all sessions
    /// together enable; so any session's start dumps while some session has the keyword on. A
    /// session without it never sees the dump events (they carry only that keyword).
    /// </remarks>
    protected override void OnEventCommand(EventCommandEventArgs command)
    {
        ArgumentNullException.ThrowIfNull(command);
        bool dump = command.Command == DumpCommand
            || (command.Command == EventCommand.Enable && IsEnabled(EventLevel.Informational, Keywords.Introspection))
            || (command.Command is EventCommand.Enable or EventCommand.Update
                && command.Arguments is { } args
                && args.TryGetValue(CommandArgument, out string? value)
                && string.Equals(value, DumpArgumentValue, StringComparison.OrdinalIgnoreCase));
        if (dump)
        {
            WriteDumpsOffThread();
        }
    }

    /// <summary>How long a command waits for its dump before returning and letting it finish later.</summary>
    private static readonly TimeSpan DumpWaitLimit = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Writes the dumps on a thread of its own and waits for it, at most <see cref="DumpWaitLimit"/>.
    /// The runtime calls <see cref="OnEventCommand"/> holding its EventListener lock, and a dump
    /// takes the library's locks (the device lock for queues and devices); a thread that holds
    /// one of those can need the EventListener lock (any first use of a runtime event source
    /// takes it: a page pool's first destroy-retry timer initialises the framework's). Dumping
    /// on the command's thread deadlocked both, seen with <c>netmem pools</c> attaching while
    /// <c>demo --wait</c> rebound a queue. Now a dump that can run completes before the command
    /// returns, as before; one that waits for such a thread completes once that thread has
    /// released the lock, after the command returned.
    /// </summary>
    [NonEvent]
    private void WriteDumpsOffThread()
    {
        var writer = new Thread(static state =>
        {
            try
            {
                ((NetmemEventSource)state!).WriteDumps();
            }
#pragma warning disable CA1031 // No exception may escape a thread the library owns; a dump that cannot be written has no one else to tell.
            catch (Exception)
#pragma warning restore CA1031
            {
            }
        })
        {
            IsBackground = true,
            Name = "netmem-introspection-dump",
        };
        writer.UnsafeStart(this);
        writer.Join(DumpWaitLimit);
    }

    /// <summary>Registered dump kinds, in registration order. Apart from the source so it exists before the source's constructor delivers a pending command.</summary>
    private static class DumpRegistry
    {
        private static readonly Lock s_lock = new();
        private static readonly List<(string Kind, Func<string> Json)> s_kinds =
        [
            (PagePoolsDumpKind, NetdevIntrospection.PagePoolsJson),
            (PagePoolStatsDumpKind, NetdevIntrospection.PagePoolStatsJson),
            ("queues", NetdevIntrospection.QueuesJson),
            ("devices", NetdevIntrospection.DevicesJson),
        ];

        public static void Register(string kind, Func<string> json)
        {
            lock (s_lock)
            {
                int i = s_kinds.FindIndex(k => k.Kind == kind);
                if (i >= 0)
                {
                    s_kinds[i] = (kind, json);
                }
                else
                {
                    s_kinds.Add((kind, json));
                }
            }
        }

        public static (string Kind, Func<string> Json)[] Snapshot()
        {
            lock (s_lock)
            {
                return [.. s_kinds];
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Set<T>(EventData* d, int i, T* value)
        where T : unmanaged
    {
        d[i].DataPointer = (nint)value;
        d[i].Size = sizeof(T);
    }
}
