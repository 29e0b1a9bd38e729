using System.Globalization;
using System.Text;
using System.Text.Json;
using Netmem.Diagnostics;
using Netmem.Tool.Cli;
using Netmem.Tool.Tracing;

namespace Netmem.Tool.Commands;

/// <summary>
/// <c>netmem pools --pid P</c>: asks a running process for its introspection dump (the Netmem
/// EventSource's <c>Command=Dump</c>) and prints its page pools once, as a table or JSON.
/// </summary>
internal sealed class PoolsCommand : ICommand
{
    /// <summary>How long to wait for the dump when <c>--seconds</c> is not given.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    public string Name => "pools";

    public string Summary => "print the page pools of a running process once (netlink page-pool-get)";

    public string Usage => "netmem pools --pid P [--json] [--seconds N]";

    public OptionKinds Options => OptionKinds.Pid | OptionKinds.Json | OptionKinds.Seconds;

    public IReadOnlyList<string> Examples =>
    [
        "netmem pools --pid 4242",
        "netmem pools --pid 4242 --json | jq '.\"page-pools\"[].inflight'",
    ];

    public int Run(CommandOptions options, CommandContext context)
    {
        int pid = options.RequirePid(Name);
        TargetProcess.EnsureNetmemLoaded(pid);
        TimeSpan timeout = options.Duration ?? DefaultTimeout;

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        stop.CancelAfter(timeout);
        var dumps = new List<(string Kind, string Json)>();
        bool complete = false;
        using var session = new EventPipeTraceSession(pid, [EventPipeTraceSession.NetmemDumpProvider()]);
        TargetProcess.Attach(session, pid);
        Task run = session.RunAsync(
            e =>
            {
                if (complete)
                {
                    return;
                }

                if (e.EventName == nameof(NetmemEventSource.IntrospectionDump) && e.Get("kind") is { } kind)
                {
                    dumps.Add((kind, e.Get("json") ?? "null"));
                }
                else if (e.EventName == nameof(NetmemEventSource.IntrospectionDumpCompleted))
                {
                    complete = true;
                    session.Stop();
                }
            },
            stop.Token);
        run.GetAwaiter().GetResult();

        if (!complete)
        {
            if (context.Cancellation.IsCancellationRequested)
            {
                return ExitCodes.Failure;
            }

            throw TargetProcess.NotNetmem(pid, $"no Netmem introspection dump within {timeout.TotalSeconds:0.#} s");
        }

        context.Out.Write(options.Json ? FormatJson(pid, dumps) : FormatTable(dumps));
        context.Out.Flush();
        return ExitCodes.Ok;
    }

    /// <summary><c>{"pid": P, "page-pools": [...], "page-pool-stats": [...], ...}</c>, each kind as the target dumped it.</summary>
    internal static string FormatJson(int pid, IReadOnlyList<(string Kind, string Json)> dumps)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("pid", pid);
            foreach ((string kind, string json) in dumps)
            {
                w.WritePropertyName(kind);
                w.WriteRawValue(json);
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + Environment.NewLine;
    }

    /// <summary>One line per pool from the page-pools dump, with its main counters from page-pool-stats.</summary>
    internal static string FormatTable(IReadOnlyList<(string Kind, string Json)> dumps)
    {
        string? poolsJson = dumps.FirstOrDefault(d => d.Kind == NetmemEventSource.PagePoolsDumpKind).Json;
        string? statsJson = dumps.FirstOrDefault(d => d.Kind == NetmemEventSource.PagePoolStatsDumpKind).Json;
        var stats = new Dictionary<long, JsonElement>();
        using JsonDocument? statsDoc = statsJson is null ? null : JsonDocument.Parse(statsJson);
        if (statsDoc?.RootElement.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement s in statsDoc.RootElement.EnumerateArray())
            {
                stats[Num(s, "id")] = s.TryGetProperty("stats", out JsonElement inner) ? inner : default;
            }
        }

        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"ID",5} {"NAME",-20} {"IFINDEX",7} {"QUEUE",5} {"NAPI",5} {"MODE",6} {"ORDER",5} {"INFLIGHT",9} {"INFLIGHT_MEM",12} {"ALLOC_FAST",12} {"ALLOC_SLOW",10} {"RC_CACHED",12} {"RC_RING",12} {"RING_FULL",10} DETACHED");
        int count = 0;
        using JsonDocument? poolsDoc = poolsJson is null ? null : JsonDocument.Parse(poolsJson);
        if (poolsDoc?.RootElement.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement p in poolsDoc.RootElement.EnumerateArray())
            {
                count++;
                long id = Num(p, "id");
                JsonElement s = stats.GetValueOrDefault(id);
                string detached = p.TryGetProperty("detach_time", out JsonElement dt) && dt.ValueKind == JsonValueKind.String ? dt.GetString()! : "-";
                string name = p.TryGetProperty("name", out JsonElement n) ? n.GetString() ?? string.Empty : string.Empty;
                string mode = p.TryGetProperty("shared", out JsonElement sh) && sh.ValueKind == JsonValueKind.True ? "shared" : "owned";
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"{id,5} {name,-20} {Num(p, "ifindex"),7} {Num(p, "queue"),5} {Num(p, "napi_id"),5} {mode,6} {Num(p, "order"),5} {Num(p, "inflight"),9} {Num(p, "inflight_mem"),12} {Num(s, "alloc_fast"),12} {Num(s, "alloc_slow"),10} {Num(s, "recycle_cached"),12} {Num(s, "recycle_ring"),12} {Num(s, "recycle_ring_full"),10} {detached}");
            }
        }

        if (count == 0)
        {
            sb.AppendLine("(no page pools)");
        }

        foreach ((string kind, string _) in dumps.Where(d => d.Kind is not NetmemEventSource.PagePoolsDumpKind and not NetmemEventSource.PagePoolStatsDumpKind))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"(also dumped: {kind}; see --json)");
        }

        return sb.ToString();
    }

    private static long Num(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : 0;
}
