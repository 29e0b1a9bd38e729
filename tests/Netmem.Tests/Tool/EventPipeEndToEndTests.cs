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
            if (events.Any(c => c.EventName == "PagePoolCreated") && events.Any(c => c.EventName == "PagePoolDestroyed"))
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
        // A dump taken in the middle of a queue restart may show the queue between its pools: ask again (bounded).
        (int code, string output, string error) = CliTests.Run("pools", "--pid", Pid, "--json");
        for (int attempt = 0; attempt < 10 && code == ExitCodes.Ok && !HasLivePayloadPool(output); attempt++)
        {
            (code, output, error) = CliTests.Run("pools", "--pid", Pid, "--json");
        }

        Assert.True(code == ExitCodes.Ok, error);
        using JsonDocument doc = JsonDocument.Parse(output);
        Assert.Equal(demo.Pid, doc.RootElement.GetProperty("pid").GetInt32());
        // The demo rebinds queue 1 every second, so a destroyed payload pool may still linger
        // (detach time set) beside the live one.
        JsonElement rx = doc.RootElement.GetProperty("page_pools").EnumerateArray()
            .Single(p => p.GetProperty("name").GetString() == "netmem0-q1-payload" && p.GetProperty("detach_time").ValueKind == JsonValueKind.Null);
        Assert.True(rx.GetProperty("id").GetInt32() > 0);
        Assert.True(rx.GetProperty("ifindex").GetInt32() > 0);
        Assert.Equal(1, rx.GetProperty("queue").GetInt32());
        Assert.False(rx.GetProperty("shared").GetBoolean());
        Assert.True(rx.GetProperty("inflight").GetInt64() > 0);
        Assert.Equal(rx.GetProperty("inflight").GetInt64() * 4096, rx.GetProperty("inflight_mem").GetInt64());
        Assert.True(rx.GetProperty("dmabuf_id").GetInt32() > 0);
        Assert.Equal("netmem0", rx.GetProperty("device").GetString());
        Assert.Equal("payload", rx.GetProperty("role").GetString());
        JsonElement header = doc.RootElement.GetProperty("page_pools").EnumerateArray()
            .First(p => p.GetProperty("name").GetString() == "netmem0-q0-hdr");
        Assert.Equal(JsonValueKind.Null, header.GetProperty("dmabuf_id").ValueKind);
        JsonElement stats = doc.RootElement.GetProperty("page_pool_stats").EnumerateArray().Single(p => p.GetProperty("id").GetInt32() == rx.GetProperty("id").GetInt32());
        Assert.True(stats.GetProperty("stats").GetProperty("alloc_fast").GetInt64() > 0);
    }

    private static bool HasLivePayloadPool(string json)
    {
        // Bound (a dmabuf id), live, and in the stats dump too: the kinds are dumped one after
        // the other, and a restart between them replaces the pool. Exactly one: a dump taken
        // while a restart has allocated the new pool but not yet freed the old one shows both live.
        using JsonDocument doc = JsonDocument.Parse(json);
        HashSet<int> withStats = [.. doc.RootElement.GetProperty("page_pool_stats").EnumerateArray().Select(p => p.GetProperty("id").GetInt32())];
        int live = doc.RootElement.GetProperty("page_pools").EnumerateArray()
            .Count(p => p.GetProperty("name").GetString() == "netmem0-q1-payload" && p.GetProperty("detach_time").ValueKind == JsonValueKind.Null);
        return live == 1 && doc.RootElement.GetProperty("page_pools").EnumerateArray()
            .Any(p => p.GetProperty("name").GetString() == "netmem0-q1-payload" && p.GetProperty("detach_time").ValueKind == JsonValueKind.Null
                && p.GetProperty("dmabuf_id").ValueKind == JsonValueKind.Number && withStats.Contains(p.GetProperty("id").GetInt32()));
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
    public void Pools_table_shows_memory_in_the_units_top_uses()
    {
        (int code, string output, string error) = CliTests.Run("pools", "--pid", Pid);

        Assert.True(code == ExitCodes.Ok, error);
        string rx = output.Split('\n').First(l => l.Contains(" netmem0-q1-payload ", StringComparison.Ordinal));
        string mem = rx.Split(' ', StringSplitOptions.RemoveEmptyEntries)[9];
        Assert.Matches(@"^\d+\.\dK$|^\d+\.\dM$", mem);
    }

    [Fact]
    public void Top_prints_plain_tables_one_row_per_device_queue_and_role_when_redirected()
    {
        (int code, string output, string error) = CliTests.Run("top", "--pid", Pid, "--seconds", "2.5");

        Assert.True(code == ExitCodes.Ok, error);
        Assert.DoesNotContain("\u001b[", output, StringComparison.Ordinal);
        Assert.Contains($"--- process {Pid} ", output, StringComparison.Ordinal);
        string[] frame = output.Split("--- process ")[^1].Split('\n', StringSplitOptions.RemoveEmptyEntries)[1..];
        Assert.StartsWith("DEVICE     QUEUE ROLE    PROVIDER POOLS  INFLIGHT", frame[0], StringComparison.Ordinal);
        string[] rx = frame.Single(l => l.StartsWith("netmem0", StringComparison.Ordinal) && l.Contains(" payload dmabuf ", StringComparison.Ordinal)).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("1", rx[1]);
        Assert.Equal("1", rx[4]);
        Assert.True(long.Parse(rx[5], CultureInfo.InvariantCulture) > 0, "inflight");
        Assert.True(long.Parse(rx[7], CultureInfo.InvariantCulture) > 0, "alloc fast");
        Assert.EndsWith("/s", rx[8], StringComparison.Ordinal);
        Assert.Contains(frame, l => l.StartsWith("netmem0        0 header  pages", StringComparison.Ordinal));
    }

    [Fact]
    public void Top_filters_by_device_and_queue()
    {
        (int code, string output, string error) = CliTests.Run("top", "--pid", Pid, "--seconds", "2.5", "--queue", "0", "--device", "netmem0");

        Assert.True(code == ExitCodes.Ok, error);
        string[] frame = output.Split("--- process ")[^1].Split('\n', StringSplitOptions.RemoveEmptyEntries)[1..];
        Assert.Equal(["header", "payload"], frame[1..].Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2]).Order());
        Assert.All(frame[1..], l => Assert.StartsWith("netmem0        0 ", l, StringComparison.Ordinal));
    }

    [Fact]
    public void Trace_json_uses_snake_case_keys_and_hex_netmem_handles()
    {
        (int code, string output, string error) = CliTests.Run("trace", "--pid", Pid, "--seconds", "2.5", "--json", "--verbose");

        Assert.True(code == ExitCodes.Ok, error);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        foreach (string line in lines)
        {
            using JsonDocument doc = JsonDocument.Parse(line);
            Assert.All(doc.RootElement.EnumerateObject(), p => Assert.Matches("^[a-z][a-z0-9_]*$", p.Name));
            if (doc.RootElement.TryGetProperty("netmem", out JsonElement netmem))
            {
                Assert.Matches("^0x[0-9a-f]+$", netmem.GetString());
                Assert.Matches("^0x[0-9a-f]+$", doc.RootElement.GetProperty("pfn").GetString());
            }
        }

        Assert.Contains(lines, l => l.Contains("\"event\":\"PagePoolStateHold\",\"pool_id\":", StringComparison.Ordinal));
        Assert.DoesNotContain(lines, l => l.Contains("IntrospectionDump", StringComparison.Ordinal));
    }
}
