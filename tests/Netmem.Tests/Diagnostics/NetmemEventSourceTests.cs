using System.Diagnostics.Tracing;
using Netmem.Diagnostics;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Diagnostics;

/// <summary>Every Netmem event, its level, keyword and payload, seen by an in-process listener.</summary>
[Collection(DiagnosticsCollection.Name)]
public sealed class NetmemEventSourceTests
{
    private const EventKeywords Lifecycle = NetmemEventSource.Keywords.Lifecycle;
    private const EventKeywords NetmemKeyword = NetmemEventSource.Keywords.Netmem;

    [Fact]
    public void PagePoolCreated_reports_id_device_queue_napi_order_size_provider_and_name()
    {
        using var listener = new RecordingListener(EventLevel.Informational, Lifecycle);
        using var arena = new PageArena(4 << 20);
        var napi = new NapiContext("es-napi");
        var queue = new RxQueue(3, napi);
        var pool = new PagePool(new PagePoolParams { Napi = napi, Queue = queue, Ifindex = 7, Order = 1, PoolSize = 256, Arena = arena, Name = "es-created" });

        EventWrittenEventArgs e = Assert.Single(listener.Where("PagePoolCreated", "poolId", pool.Id));
        Assert.Equal(NetmemEventSource.PoolCreatedId, e.EventId);
        Assert.Equal(EventLevel.Informational, e.Level);
        Assert.Equal(Lifecycle, e.Keywords & (EventKeywords)0xFFFF);
        Assert.Equal(
            [("poolId", (object?)pool.Id), ("ifindex", 7), ("queue", 3), ("napiId", napi.Id), ("order", 1), ("poolSize", 256), ("hasProvider", 0), ("name", "es-created")],
            RecordingListener.Fields(e));
        pool.Dispose();
    }

    [Fact]
    public unsafe void StateHold_and_StateRelease_report_each_netmem_its_pfn_and_running_counts()
    {
        using var listener = new RecordingListener(EventLevel.Verbose, Lifecycle | NetmemKeyword);
        using var arena = new PageArena(4 << 20);
        var napi = new NapiContext();
        napi.BindToCurrentThread();
        var pool = new PagePool(new PagePoolParams { Napi = napi, Arena = arena, Name = "es-state" });
        NetmemRef a = pool.AllocNetmem();
        ulong held = pool.GetStats().HoldCount;
        pool.RecycleDirect(a);
        pool.Dispose();

        List<EventWrittenEventArgs> holds = listener.Where("PagePoolStateHold", "poolId", pool.Id);
        List<EventWrittenEventArgs> releases = listener.Where("PagePoolStateRelease", "poolId", pool.Id);
        Assert.Equal((int)held, holds.Count);
        Assert.Equal((int)held, releases.Count);
        Assert.All(holds, e =>
        {
            Assert.Equal(NetmemEventSource.StateHoldId, e.EventId);
            Assert.Equal(EventLevel.Verbose, e.Level);
            Assert.Equal(NetmemKeyword, e.Keywords & (EventKeywords)0xFFFF);
            Assert.Equal(["poolId", "netmem", "pfn", "hold"], e.PayloadNames);
        });
        Assert.Equal(Enumerable.Range(1, (int)held).Select(i => (ulong)i), holds.Select(e => (ulong)RecordingListener.Field(e, "hold")!));
        Assert.Equal(Enumerable.Range(1, (int)held).Select(i => (ulong)i), releases.Select(e => (ulong)RecordingListener.Field(e, "release")!));

        ulong pfn = (ulong)a.PageAddress >> 12;
        EventWrittenEventArgs holdA = Assert.Single(holds, e => (ulong)RecordingListener.Field(e, "netmem")! == (ulong)a.Value);
        Assert.Equal(pfn, RecordingListener.Field(holdA, "pfn"));
        EventWrittenEventArgs releaseA = Assert.Single(releases, e => (ulong)RecordingListener.Field(e, "netmem")! == (ulong)a.Value);
        Assert.Equal(["poolId", "netmem", "pfn", "release"], releaseA.PayloadNames);
        Assert.Equal(pfn, RecordingListener.Field(releaseA, "pfn"));
        Assert.Equal(EventLevel.Verbose, releaseA.Level);
        napi.Unbind();
    }

    [Fact]
    public void Lifecycle_only_listener_gets_no_per_netmem_events()
    {
        using var listener = new RecordingListener(EventLevel.Verbose, Lifecycle);
        using var arena = new PageArena(4 << 20);
        var pool = new PagePool(new PagePoolParams { Arena = arena, Name = "es-quiet" });
        pool.PutFullNetmem(pool.AllocNetmem(), allowDirect: false);
        pool.Dispose();

        Assert.Single(listener.Where("PagePoolCreated", "poolId", pool.Id));
        Assert.Single(listener.Where("PagePoolDestroyed", "poolId", pool.Id));
        Assert.Empty(listener.Where("PagePoolStateHold", "poolId", pool.Id));
        Assert.Empty(listener.Where("PagePoolStateRelease", "poolId", pool.Id));
    }

    [Fact]
    public void Destroy_with_netmem_in_flight_reports_release_stalled_shutdown_then_destroyed()
    {
        using var listener = new RecordingListener(EventLevel.Informational, Lifecycle);
        using var arena = new PageArena(4 << 20);
        var clock = new ManualTimeProvider();
        var pool = new PagePool(new PagePoolParams
        {
            Arena = arena,
            Name = "es-stalled",
            TimeProvider = clock,
            DestroyRetryPeriod = TimeSpan.FromSeconds(1),
            StalledReportPeriod = TimeSpan.FromSeconds(2),
        });
        NetmemRef kept = pool.AllocNetmem();
        pool.Dispose();
        Assert.False(pool.IsFreed);
        ulong hold = pool.GetStats().HoldCount;

        clock.Advance(TimeSpan.FromSeconds(1));
        EventWrittenEventArgs release = Assert.Single(listener.Where("PagePoolRelease", "poolId", pool.Id));
        Assert.Equal(NetmemEventSource.ReleaseId, release.EventId);
        Assert.Equal(EventLevel.Informational, release.Level);
        Assert.Equal([("poolId", (object?)pool.Id), ("inflight", 1L), ("hold", hold), ("release", hold - 1)], RecordingListener.Fields(release));
        Assert.Empty(listener.Where("PagePoolStalledShutdown", "poolId", pool.Id));

        clock.Advance(TimeSpan.FromSeconds(1));
        EventWrittenEventArgs stalled = Assert.Single(listener.Where("PagePoolStalledShutdown", "poolId", pool.Id));
        Assert.Equal(NetmemEventSource.StalledShutdownId, stalled.EventId);
        Assert.Equal(EventLevel.Warning, stalled.Level);
        Assert.Equal(Lifecycle, stalled.Keywords & (EventKeywords)0xFFFF);
        Assert.Equal([("poolId", (object?)pool.Id), ("inflight", 1L), ("secondsSinceDetach", 2L)], RecordingListener.Fields(stalled));
        Assert.Equal(2, listener.Where("PagePoolRelease", "poolId", pool.Id).Count);
        Assert.Empty(listener.Where("PagePoolDestroyed", "poolId", pool.Id));

        PagePool.PutNetmemAny(kept);
        Assert.True(pool.IsFreed);
        EventWrittenEventArgs destroyed = Assert.Single(listener.Where("PagePoolDestroyed", "poolId", pool.Id));
        Assert.Equal(NetmemEventSource.PoolDestroyedId, destroyed.EventId);
        Assert.Equal(EventLevel.Informational, destroyed.Level);
        Assert.Equal([("poolId", (object?)pool.Id), ("hold", hold), ("release", hold)], RecordingListener.Fields(destroyed));
    }

    [Fact]
    public void DmabufBindingCreated_and_Destroyed_carry_their_payloads()
    {
        using var listener = new RecordingListener(EventLevel.Informational, Lifecycle);
        NetmemEventSource.Log.DmabufBindingCreated(910001, 1L << 30, 256, 4);
        NetmemEventSource.Log.DmabufBindingDestroyed(910001, 1L << 30, 262144L, 0L);

        EventWrittenEventArgs created = Assert.Single(listener.Where("DmabufBindingCreated", "bindingId", 910001));
        Assert.Equal(NetmemEventSource.BindingCreatedId, created.EventId);
        Assert.Equal(EventLevel.Informational, created.Level);
        Assert.Equal([("bindingId", (object?)910001), ("size", 1L << 30), ("chunks", 256), ("ifindex", 4)], RecordingListener.Fields(created));
        EventWrittenEventArgs destroyed = Assert.Single(listener.Where("DmabufBindingDestroyed", "bindingId", 910001));
        Assert.Equal(NetmemEventSource.BindingDestroyedId, destroyed.EventId);
        Assert.Equal([("bindingId", (object?)910001), ("size", 1L << 30), ("avail", 262144L), ("outstanding", 0L)], RecordingListener.Fields(destroyed));
    }

    [Fact]
    public void QueueBound_and_Unbound_carry_device_queue_and_binding()
    {
        using var listener = new RecordingListener(EventLevel.Informational, Lifecycle);
        NetmemEventSource.Log.QueueBound(9, 2, 910002);
        NetmemEventSource.Log.QueueUnbound(9, 2, 910002);

        EventWrittenEventArgs bound = Assert.Single(listener.Where("QueueBound", "bindingId", 910002));
        Assert.Equal(NetmemEventSource.QueueBoundId, bound.EventId);
        Assert.Equal(Lifecycle, bound.Keywords & (EventKeywords)0xFFFF);
        Assert.Equal([("ifindex", (object?)9), ("queue", 2), ("bindingId", 910002)], RecordingListener.Fields(bound));
        EventWrittenEventArgs unbound = Assert.Single(listener.Where("QueueUnbound", "bindingId", 910002));
        Assert.Equal(NetmemEventSource.QueueUnboundId, unbound.EventId);
        Assert.Equal([("ifindex", (object?)9), ("queue", 2), ("bindingId", 910002)], RecordingListener.Fields(unbound));
    }

    [Fact]
    public void Enabling_with_Command_Dump_writes_every_dump_kind_then_completed()
    {
        using var arena = new PageArena(4 << 20);
        var pool = new PagePool(new PagePoolParams { Arena = arena, Ifindex = 11, Name = "es-dumped" });
        using var listener = new RecordingListener(EventLevel.Informational, NetmemEventSource.Keywords.Introspection, new Dictionary<string, string?> { ["Command"] = "Dump" });

        EventWrittenEventArgs[] events = [.. listener.Events];
        EventWrittenEventArgs pools = Assert.Single(events, e => e.EventName == "IntrospectionDump" && (string)RecordingListener.Field(e, "kind")! == "page-pools");
        Assert.Equal(NetmemEventSource.IntrospectionDumpId, pools.EventId);
        Assert.Equal(["kind", "json"], pools.PayloadNames);
        string json = (string)RecordingListener.Field(pools, "json")!;
        Assert.Contains($"\"id\":{pool.Id},\"name\":\"es-dumped\",\"ifindex\":11", json, StringComparison.Ordinal);
        EventWrittenEventArgs stats = Assert.Single(events, e => e.EventName == "IntrospectionDump" && (string)RecordingListener.Field(e, "kind")! == "page-pool-stats");
        Assert.Contains("\"alloc_fast\"", (string)RecordingListener.Field(stats, "json")!, StringComparison.Ordinal);
        EventWrittenEventArgs completed = events[^1];
        Assert.Equal("IntrospectionDumpCompleted", completed.EventName);
        Assert.Equal(events.Count(e => e.EventName == "IntrospectionDump"), (int)RecordingListener.Field(completed, "kinds")!);
        pool.Dispose();
    }

    [Fact]
    public void Enabling_the_introspection_keyword_dumps_without_arguments()
    {
        NetmemEventSource.RegisterDump("test-kind", () => "[{\"answer\":42}]");
        using var listener = new RecordingListener(EventLevel.Informational, NetmemEventSource.Keywords.Introspection);

        EventWrittenEventArgs dump = Assert.Single(listener.Events, e => e.EventName == "IntrospectionDump" && (string)RecordingListener.Field(e, "kind")! == "test-kind");
        Assert.Equal("[{\"answer\":42}]", RecordingListener.Field(dump, "json"));
        Assert.Equal("IntrospectionDumpCompleted", listener.Events.Last().EventName);
    }

    [Fact]
    public void SendCommand_Dump_dumps_again_to_a_session_already_listening()
    {
        NetmemEventSource.RegisterDump("test-kind", () => "[{\"answer\":42}]");
        using var listener = new RecordingListener(EventLevel.Informational, NetmemEventSource.Keywords.Introspection);
        int before = listener.Events.Count(e => e.EventName == "IntrospectionDumpCompleted");

        EventSource.SendCommand(NetmemEventSource.Log, NetmemEventSource.DumpCommand, null);

        Assert.Equal(before + 1, listener.Events.Count(e => e.EventName == "IntrospectionDumpCompleted"));
        Assert.Equal(2, listener.Events.Count(e => e.EventName == "IntrospectionDump" && (string)RecordingListener.Field(e, "kind")! == "test-kind"));
    }

    [Fact]
    public void A_lifecycle_session_sees_no_dumps_even_with_Command_Dump()
    {
        using var listener = new RecordingListener(EventLevel.Informational, NetmemEventSource.Keywords.Lifecycle, new Dictionary<string, string?> { ["Command"] = "Dump" });

        EventSource.SendCommand(NetmemEventSource.Log, NetmemEventSource.DumpCommand, null);

        Assert.DoesNotContain(listener.Events, e => e.EventName!.StartsWith("IntrospectionDump", StringComparison.Ordinal));
    }

    [Fact]
    public void A_failing_dump_is_reported_as_a_json_error_not_thrown()
    {
        NetmemEventSource.RegisterDump("test-failing", () => throw new InvalidOperationException("no \"devices\" yet"));
        using var listener = new RecordingListener(EventLevel.Informational, NetmemEventSource.Keywords.Introspection, new Dictionary<string, string?> { ["Command"] = "Dump" });

        EventWrittenEventArgs dump = Assert.Single(listener.Events, e => e.EventName == "IntrospectionDump" && (string)RecordingListener.Field(e, "kind")! == "test-failing");
        Assert.Equal("{\"error\":\"no \\u0022devices\\u0022 yet\"}", RecordingListener.Field(dump, "json"));
    }

    [Fact]
    public void A_dump_that_needs_the_device_lock_does_not_deadlock_with_a_thread_that_holds_it_and_needs_the_listener_lock()
    {
        // The hang seen with `netmem pools` attaching while `demo --wait` rebound a queue: one
        // thread holds the device lock and then needs the runtime's EventListener lock (a first
        // use of a runtime event source takes it; creating a listener does too); a session that
        // enables introspection holds that lock while the source dumps, and the dump needs the
        // device lock.
        using var holding = new ManualResetEventSlim();
        RecordingListener? listener = null;
        Exception? fault = null;
        var enabler = new Thread(() => listener = new RecordingListener(EventLevel.Informational, NetmemEventSource.Keywords.Introspection)) { IsBackground = true };
        var holder = new Thread(() =>
        {
            try
            {
                lock (NetDevice.Rtnl)
                {
                    holding.Set();

                    // Once the enabler is blocked in its command, ask for the listener lock.
                    SpinWait.SpinUntil(() => (enabler.ThreadState & ThreadState.WaitSleepJoin) != 0, TimeSpan.FromSeconds(10));
                    using var second = new RecordingListener(EventLevel.Informational, NetmemEventSource.Keywords.Lifecycle);
                }
            }
#pragma warning disable CA1031 // Reported by the assertion below.
            catch (Exception e)
#pragma warning restore CA1031
            {
                fault = e;
            }
        })
        { IsBackground = true };

        holder.Start();
        Assert.True(holding.Wait(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
        enabler.Start();

        Assert.True(holder.Join(TimeSpan.FromSeconds(30)), "the thread holding the device lock never got the listener lock: deadlock");
        Assert.True(enabler.Join(TimeSpan.FromSeconds(30)), "enabling introspection never returned: deadlock");
        Assert.Null(fault);
        using RecordingListener done = listener!;
        Assert.True(SpinWait.SpinUntil(() => done.Events.Any(e => e.EventName == "IntrospectionDumpCompleted"), TimeSpan.FromSeconds(30)),
            "the dump never completed after the device lock was released");
        // The second listener's start dumps again (the keyword is on for the first): both are whole.
        List<EventWrittenEventArgs> devices = [.. done.Events.Where(e => e.EventName == "IntrospectionDump" && (string)RecordingListener.Field(e, "kind")! == "devices")];
        Assert.NotEmpty(devices);
        Assert.All(devices, d => Assert.DoesNotContain("error", (string)RecordingListener.Field(d, "json")!, StringComparison.Ordinal));
    }
}
