using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Netmem.Diagnostics;
using Netmem.Tool.Cli;
using Netmem.Tool.Tracing;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>
/// A <c>netmem demo --wait</c> child process traced over EventPipe with the same
/// <see cref="EventPipeTraceSession"/> that <c>netmem trace</c> uses.
/// </summary>
public sealed class EventPipeEndToEndTests
{
    [Fact]
    public async Task Trace_session_receives_pool_lifecycle_and_verbose_state_events_then_the_demo_exits_0()
    {
        using ToolProcess demo = await ToolProcess.StartDemoAsync();
        var events = new ConcurrentQueue<TraceEventRecord>();
        var complete = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var session = new EventPipeTraceSession(demo.Id, [EventPipeTraceSession.NetmemProvider(verbose: true)]);
        using var timeout = new CancellationTokenSource(ToolProcess.Timeout);
        Task run = session.RunAsync(
            e =>
            {
                events.Enqueue(e);
                if (e.EventName == "PagePoolDestroyed" && events.Any(c => IsPayloadPoolCreated(c) && c.GetInt64("poolId") == e.GetInt64("poolId")))
                {
                    complete.TrySetResult();
                }
            },
            timeout.Token);

        await complete.Task.WaitAsync(ToolProcess.Timeout, TestContext.Current.CancellationToken);
        session.Stop();
        await run.WaitAsync(ToolProcess.Timeout, TestContext.Current.CancellationToken);

        // The demo rebinds queue 1 every second: one devmem payload pool seen whole, created at a
        // rebind, its net_iovs held and released, destroyed after the next rebind.
        TraceEventRecord destroyed = events.First(e => e.EventName == "PagePoolDestroyed" && events.Any(c => IsPayloadPoolCreated(c) && c.GetInt64("poolId") == e.GetInt64("poolId")));
        long id = destroyed.GetInt64("poolId");
        Assert.True(id > 0);
        TraceEventRecord created = events.Single(e => e.EventName == "PagePoolCreated" && e.GetInt64("poolId") == id);
        Assert.Equal(NetmemEventSource.SourceName, created.ProviderName);
        Assert.Equal(["poolId", "ifindex", "queue", "napiId", "order", "poolSize", "hasProvider", "name"], created.Fields.Select(f => f.Key));
        Assert.Equal("netmem0-q1-payload", created.Get("name"));
        Assert.True(created.GetInt64("ifindex") > 0);
        Assert.Equal(1, created.GetInt64("queue"));
        Assert.Equal(0, created.GetInt64("order"));
        Assert.Equal(4096, created.GetInt64("poolSize"));
        Assert.Equal(1, created.GetInt64("hasProvider"));

        TraceEventRecord[] holds = [.. events.Where(e => e.EventName == "PagePoolStateHold" && e.GetInt64("poolId") == id)];
        TraceEventRecord[] releases = [.. events.Where(e => e.EventName == "PagePoolStateRelease" && e.GetInt64("poolId") == id)];
        Assert.NotEmpty(holds);
        Assert.Equal(holds.Length, releases.Length);
        Assert.All(holds, h => Assert.NotEqual(0UL, Convert.ToUInt64(h.Payload["netmem"], CultureInfo.InvariantCulture)));
        Assert.Equal(Enumerable.Range(1, holds.Length).Select(i => (long)i), holds.Select(h => h.GetInt64("hold")));
        Assert.Equal((long)holds.Length, destroyed.GetInt64("hold"));
        Assert.Equal((long)holds.Length, destroyed.GetInt64("release"));

        Assert.Equal(0, await demo.StopAsync());
    }

    private static bool IsPayloadPoolCreated(TraceEventRecord e) =>
        e.EventName == "PagePoolCreated" && e.Get("name") == "netmem0-q1-payload" && e.GetInt64("hasProvider") == 1;

    [Fact]
    public async Task Lifecycle_only_session_gets_no_per_netmem_events()
    {
        using ToolProcess demo = await ToolProcess.StartDemoAsync();
        var events = new ConcurrentQueue<TraceEventRecord>();
        var sawDestroyed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var session = new EventPipeTraceSession(demo.Id, [EventPipeTraceSession.NetmemProvider(verbose: false)]);
        Task run = session.RunAsync(e =>
        {
            events.Enqueue(e);
            if (e.EventName == "PagePoolDestroyed")
            {
                sawDestroyed.TrySetResult();
            }
        }, TestContext.Current.CancellationToken);

        await sawDestroyed.Task.WaitAsync(ToolProcess.Timeout, TestContext.Current.CancellationToken);
        session.Stop();
        await run.WaitAsync(ToolProcess.Timeout, TestContext.Current.CancellationToken);

        Assert.Contains(events, e => e.EventName == "PagePoolCreated");
        Assert.DoesNotContain(events, e => e.EventName.StartsWith("PagePoolState", StringComparison.Ordinal));
        Assert.Equal(0, await demo.StopAsync());
    }
}

/// <summary><c>netmem pools</c> and <c>netmem top</c> against one running demo.</summary>
public sealed class ToolAgainstDemoTests(DemoProcessFixture demo) : IClassFixture<DemoProcessFixture>
{
    private string Pid => demo.Pid.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public void Pools_json_lists_the_demo_pools_and_their_stats()
    {
        (int code, string output, string error) = CliTests.Run("pools", "--pid", Pid, "--json");

        Assert.True(code == ExitCodes.Ok, error);
        using JsonDocument doc = JsonDocument.Parse(output);
        Assert.Equal(demo.Pid, doc.RootElement.GetProperty("pid").GetInt32());
        // The demo rebinds queue 1 every second, so a destroyed payload pool may still linger
        // (detach time set) beside the live one.
        JsonElement rx = doc.RootElement.GetProperty("page-pools").EnumerateArray()
            .Single(p => p.GetProperty("name").GetString() == "netmem0-q1-payload" && p.GetProperty("detach_time").ValueKind == JsonValueKind.Null);
        Assert.True(rx.GetProperty("id").GetInt32() > 0);
        Assert.True(rx.GetProperty("ifindex").GetInt32() > 0);
        Assert.Equal(1, rx.GetProperty("queue").GetInt32());
        Assert.False(rx.GetProperty("shared").GetBoolean());
        Assert.True(rx.GetProperty("inflight").GetInt64() > 0);
        Assert.Equal(rx.GetProperty("inflight").GetInt64() * 4096, rx.GetProperty("inflight_mem").GetInt64());
        Assert.True(rx.GetProperty("dmabuf_id").GetInt32() > 0);
        JsonElement header = doc.RootElement.GetProperty("page-pools").EnumerateArray()
            .First(p => p.GetProperty("name").GetString() == "netmem0-q0-hdr");
        Assert.Equal(JsonValueKind.Null, header.GetProperty("dmabuf_id").ValueKind);
        JsonElement stats = doc.RootElement.GetProperty("page-pool-stats").EnumerateArray().Single(p => p.GetProperty("id").GetInt32() == rx.GetProperty("id").GetInt32());
        Assert.True(stats.GetProperty("stats").GetProperty("alloc_fast").GetInt64() > 0);
    }

    [Fact]
    public void Pools_table_has_a_line_per_pool()
    {
        (int code, string output, string error) = CliTests.Run("pools", "--pid", Pid);

        Assert.True(code == ExitCodes.Ok, error);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("   ID NAME", lines[0], StringComparison.Ordinal);
        Assert.Contains(lines, l => l.Contains(" netmem0-q1-payload ", StringComparison.Ordinal) && l.Contains(" owned ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(" netmem0-q0-hdr ", StringComparison.Ordinal) && l.Contains(" owned ", StringComparison.Ordinal));
    }

    [Fact]
    public void Top_prints_plain_tables_with_the_demo_pools_when_redirected()
    {
        (int code, string output, string error) = CliTests.Run("top", "--pid", Pid, "--seconds", "2.5");

        Assert.True(code == ExitCodes.Ok, error);
        Assert.DoesNotContain("\u001b[", output, StringComparison.Ordinal);
        Assert.Contains($"--- process {Pid} ", output, StringComparison.Ordinal);
        string rx = output.Split('\n').Last(l => l.Contains(" netmem0-q1-payload ", StringComparison.Ordinal));
        string[] cells = rx.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.EndsWith("/1", cells[2], StringComparison.Ordinal);
        Assert.True(long.Parse(cells[3], CultureInfo.InvariantCulture) > 0, "inflight");
        Assert.True(long.Parse(cells[5], CultureInfo.InvariantCulture) > 0, "alloc fast");
    }
}
