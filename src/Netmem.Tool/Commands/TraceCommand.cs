using System.Globalization;
using System.Text;
using System.Text.Json;
using Netmem.Tool.Cli;
using Netmem.Tool.Tracing;

namespace Netmem.Tool.Commands;

/// <summary><c>netmem trace --pid P</c>: streams the Netmem EventSource of a running process, one line per event.</summary>
internal sealed class TraceCommand : ICommand
{
    public string Name => "trace";

    public string Summary => "stream Netmem events (pool, binding, queue lifecycle) from a running process";

    public string Usage => "netmem trace --pid P [--verbose] [--seconds N] [--json]";

    public OptionKinds Options => OptionKinds.Pid | OptionKinds.Verbose | OptionKinds.Seconds | OptionKinds.Json;

    public IReadOnlyList<string> Examples =>
    [
        "netmem trace --pid 4242",
        "netmem trace --pid 4242 --verbose --seconds 5   # with per-netmem hold/release",
    ];

    public int Run(CommandOptions options, CommandContext context)
    {
        int pid = options.RequirePid(Name);
        TargetProcess.EnsureNetmemLoaded(pid);

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        if (options.Duration is { } d)
        {
            stop.CancelAfter(d);
        }

        using var session = new EventPipeTraceSession(pid, [EventPipeTraceSession.NetmemProvider(options.Verbose)]);
        TargetProcess.Attach(session, pid);
        if (!options.Json)
        {
            context.Error.WriteLine($"netmem: tracing process {pid} ({(options.Verbose ? "lifecycle + per-netmem" : "lifecycle")} events); Ctrl+C stops");
        }

        long events = 0;
        Task run = session.RunAsync(
            e =>
            {
                events++;
                context.Out.WriteLine(options.Json ? FormatJson(e) : Format(e));
            },
            stop.Token);
        run.GetAwaiter().GetResult();
        context.Out.Flush();
        if (!options.Json)
        {
            context.Error.WriteLine($"netmem: {events} events");
        }

        return ExitCodes.Ok;
    }

    /// <summary><c>12:00:01.123456 PagePoolCreated poolId=3 ifindex=1 ... name="demo-rx0"</c>.</summary>
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
                sb.Append(Convert.ToString(value, CultureInfo.InvariantCulture));
            }
        }

        return sb.ToString();
    }

    /// <summary>One JSON object per event: time, event and its fields.</summary>
    internal static string FormatJson(TraceEventRecord e)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("time", e.TimeStamp.ToUniversalTime());
            w.WriteString("event", e.EventName);
            foreach ((string name, object? value) in e.Fields)
            {
                switch (value)
                {
                    case null:
                        w.WriteNull(name);
                        break;
                    case string s:
                        w.WriteString(name, s);
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
}
