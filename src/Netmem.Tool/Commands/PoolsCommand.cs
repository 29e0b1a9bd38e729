using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Netmem.Diagnostics;
using Netmem.Tool.Cli;
using Netmem.Tool.Tracing;

namespace Netmem.Tool.Commands;

/// <summary>
/// <c>netmem pools --pid P</c>: asks a running process for its introspection dump (the Netmem
/// EventSource's introspection keyword) and prints its page pools once, as a table or JSON.
/// </summary>
internal sealed class PoolsCommand : ToolCommand
{
    private readonly Option<int> _pid = ToolOptions.Pid();
    private readonly Option<bool> _json = ToolOptions.Json("print JSON (snake_case keys, as the README documents) instead of a table");
    private readonly Option<double?> _timeout = ToolOptions.AttachTimeout();

    public PoolsCommand()
        : base("pools", "print the page pools of a running process once (netlink page-pool-get)")
    {
        Options.Add(_pid);
        Options.Add(_json);
        Options.Add(_timeout);
    }

    public override IReadOnlyList<string> Examples =>
    [
        "netmem pools --pid 4242",
        "netmem pools --pid 4242 --json | jq '.page_pools[].inflight'",
    ];

    public override int Run(ParseResult result, CommandContext context)
    {
        int pid = result.GetValue(_pid);
        NetmemProbe probe = TargetSession.Run(
            pid,
            [EventPipeTraceSession.NetmemDumpProvider()],
            TimeSpan.FromSeconds(result.GetValue(_timeout)!.Value),
            static _ => { },
            static (session, _) => session.Stop(),
            context.Cancellation);
        if (probe.Dump.Count == 0)
        {
            return ExitCodes.Failure;
        }

        context.Out.Write(result.GetValue(_json) ? FormatJson(pid, probe.Dump) : FormatTable(probe.Dump));
        context.Out.Flush();
        return ExitCodes.Ok;
    }

    /// <summary>The JSON key of a dump kind: <c>page-pools</c> becomes <c>page_pools</c>.</summary>
    internal static string JsonKey(string kind) => kind.Replace('-', '_');

    /// <summary><c>{"pid": P, "page_pools": [...], "page_pool_stats": [...], "queues": [...], "devices": [...]}</c>, each kind as the target dumped it.</summary>
    internal static string FormatJson(int pid, IReadOnlyList<(string Kind, string Json)> dumps)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteNumber("pid", pid);
            foreach ((string kind, string json) in dumps)
            {
                w.WritePropertyName(JsonKey(kind));
                w.WriteRawValue(json);
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray()) + Environment.NewLine;
    }

    /// <summary>One line per pool from the page-pools dump, with its main counters from page-pool-stats; memory in <see cref="Units"/>.</summary>
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
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"ID",5} {"NAME",-20} {"DEVICE",-10} {"QUEUE",5} {"ROLE",-7} {"NAPI",5} {"MODE",6} {"ORDER",5} {"INFLIGHT",9} {"MEM",8} {"ALLOC_FAST",12} {"ALLOC_SLOW",10} {"RC_CACHED",12} {"RC_RING",12} {"RING_FULL",10} DETACHED");
        int count = 0;
        using JsonDocument? poolsDoc = poolsJson is null ? null : JsonDocument.Parse(poolsJson);
        if (poolsDoc?.RootElement.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement p in poolsDoc.RootElement.EnumerateArray())
            {
                count++;
                long id = Num(p, "id");
                JsonElement s = stats.GetValueOrDefault(id);
                string detached = Str(p, "detach_time") ?? "-";
                string mode = p.TryGetProperty("shared", out JsonElement sh) && sh.ValueKind == JsonValueKind.True ? "shared" : "owned";
                sb.AppendLine(CultureInfo.InvariantCulture,
                    $"{id,5} {Str(p, "name") ?? string.Empty,-20} {Str(p, "device") ?? "-",-10} {Num(p, "queue"),5} {Str(p, "role") ?? "-",-7} {Num(p, "napi_id"),5} {mode,6} {Num(p, "order"),5} {Num(p, "inflight"),9} {Units.Bytes(Num(p, "inflight_mem")),8} {Num(s, "alloc_fast"),12} {Num(s, "alloc_slow"),10} {Num(s, "recycle_cached"),12} {Num(s, "recycle_ring"),12} {Num(s, "recycle_ring_full"),10} {detached}");
            }
        }

        if (count == 0)
        {
            sb.AppendLine("(no page pools)");
        }

        foreach ((string kind, string _) in dumps.Where(d => d.Kind is not NetmemEventSource.PagePoolsDumpKind and not NetmemEventSource.PagePoolStatsDumpKind))
        {
            sb.AppendLine(CultureInfo.InvariantCulture, $"(also dumped: {JsonKey(kind)}; see --json)");
        }

        return sb.ToString();
    }

    private static long Num(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.Number ? v.GetInt64() : 0;

    private static string? Str(JsonElement e, string name) =>
        e.ValueKind == JsonValueKind.Object && e.TryGetProperty(name, out JsonElement v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
}
