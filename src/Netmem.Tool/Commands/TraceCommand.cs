using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Netmem.Tool.Cli;
using Netmem.Tool.Tracing;

namespace Netmem.Tool.Commands;

/// <summary><c>netmem trace --pid P</c>: streams the Netmem EventSource of a running process, one line per event.</summary>
internal sealed class TraceCommand : ToolCommand
{
    /// <summary>Payload fields that hold a netmem handle or a page frame number: printed in hex, as the kernel's tracepoints print them.</summary>
    private static readonly HashSet<string> HexFields = new(StringComparer.Ordinal) { "netmem", "pfn" };

    private readonly Option<int> _pid = ToolOptions.Pid();
    private readonly Option<bool> _verbose = ToolOptions.Flag("--verbose", "-v", "add per-netmem hold/release events (high volume)");
    private readonly Option<double?> _seconds = ToolOptions.Seconds("--seconds", "-s", "stop after this long (default: until Ctrl+C or the process exits)", 0.1, 604800);
    private readonly Option<bool> _json = ToolOptions.Json("print one JSON object per line (snake_case keys) instead of text");
    private readonly Option<double?> _timeout = ToolOptions.AttachTimeout();

    public TraceCommand()
        : base("trace", "stream Netmem events (pool, binding, queue lifecycle) from a running process")
    {
        Options.Add(_pid);
        Options.Add(_verbose);
        Options.Add(_seconds);
        Options.Add(_json);
        Options.Add(_timeout);
    }

    public override IReadOnlyList<string> Examples =>
    [
        "netmem trace --pid 4242",
        "netmem trace --pid 4242 --verbose --seconds 5   # with per-netmem hold/release",
        "netmem trace --pid 4242 --json | jq .event",
    ];

    public override int Run(ParseResult result, CommandContext context)
    {
        int pid = result.GetValue(_pid);
        bool json = result.GetValue(_json);
        bool verbose = result.GetValue(_verbose);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        if (result.GetValue(_seconds) is { } d)
        {
            stop.CancelAfter(TimeSpan.FromSeconds(d));
        }

        long events = 0;
        bool announced = false;
        void Announce()
        {
            if (!announced && !json)
            {
                announced = true;
                context.Error.WriteLine($"netmem: tracing process {pid} ({(verbose ? "lifecycle + per-netmem" : "lifecycle")} events); Ctrl+C stops");
            }
        }

        try
        {
            TargetSession.Run(
                pid,
                [EventPipeTraceSession.NetmemProvider(verbose, dump: true)],
                TimeSpan.FromSeconds(result.GetValue(_timeout)!.Value),
                e =>
                {
                    Announce();
                    events++;
                    context.Out.WriteLine(json ? FormatJson(e) : Format(e));
                },
                (_, _) => Announce(),
                stop.Token);
        }
        finally
        {
            context.Out.Flush();
        }

        if (!json)
        {
            context.Error.WriteLine($"netmem: {events} events");
        }

        return ExitCodes.Ok;
    }

    /// <summary><c>12:00:01.123456 PagePoolCreated poolId=3 ifindex=1 ... name="demo-rx0"</c>; netmem handles in hex.</summary>
    internal static string Format(TraceEventRecord e)
    {
        var sb = new StringBuilder();
        sb.Append(e.TimeStamp.ToLocalTime().ToString("HH:mm:ss.ffffff", CultureInfo.InvariantCulture)).Append(' ').Append(e.EventName);
        foreach ((string name, object? value) in e.Fields)
        {
            sb.Append(' ').Append(name).Append('=');
            if (value is string s)
            {
                sb.Append(JsonSerializer.Serialize(s, ToolJsonContext.Default.String));
            }
            else
            {
                sb.Append(FormatScalar(name, value));
            }
        }

        return sb.ToString();
    }

    /// <summary>
    /// One JSON object per event: <c>time</c>, <c>event</c>, then its fields with snake_case
    /// keys (<c>pool_id</c>, <c>napi_id</c>); netmem handles and pfns as hex strings.
    /// </summary>
    internal static string FormatJson(TraceEventRecord e)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("time", e.TimeStamp.ToUniversalTime());
            w.WriteString("event", e.EventName);
            foreach ((string field, object? value) in e.Fields)
            {
                string name = JsonNamingPolicy.SnakeCaseLower.ConvertName(field);
                switch (value)
                {
                    case null:
                        w.WriteNull(name);
                        break;
                    case string s:
                        w.WriteString(name, s);
                        break;
                    case IConvertible when HexFields.Contains(field):
                        w.WriteString(name, FormatScalar(field, value));
                        break;
                    case IConvertible c when value is not bool and not char:
                        w.WriteNumber(name, c.ToDecimal(CultureInfo.InvariantCulture));
                        break;
                    default:
                        w.WriteString(name, Convert.ToString(value, CultureInfo.InvariantCulture));
                        break;
                }
            }

            w.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static string FormatScalar(string field, object? value) =>
        HexFields.Contains(field) && value is IConvertible c and not string
            ? "0x" + c.ToUInt64(CultureInfo.InvariantCulture).ToString("x", CultureInfo.InvariantCulture)
            : Convert.ToString(value, CultureInfo.InvariantCulture) ?? string.Empty;
}
