using System.CommandLine;
using System.Text.Json;
using Netmem.Tool.Cli;
using Netmem.Tool.Demo;

namespace Netmem.Tool.Commands;

/// <summary>
/// The default command: the whole system on synthetic traffic (see <see cref="DemoRunner"/>).
/// With <c>--wait</c> it runs until stopped, rebinding the devmem queues every second so a tracer
/// sees pools and bindings come and go under live traffic; it prints one line starting
/// <c>demo: running</c> once traffic flows, and stops on Ctrl+C, SIGTERM, end of stdin (when
/// stdin is a pipe or file other than /dev/null) or after <c>--seconds</c>.
/// </summary>
/// <remarks>
/// Progress: on a terminal where it is the foreground job, one line rewritten in place; in the
/// background or into a file or pipe, nothing until the summary, unless <c>--progress</c> asks
/// for a plain line every second.
/// </remarks>
internal sealed class DemoCommand : ToolCommand
{
    /// <summary>
    /// Fault injection for tests of the failure path: <c>corrupt-payload</c> flips one byte in
    /// the region under a consumer, which its verification must catch (exit code 1).
    /// </summary>
    public const string FaultVariable = "NETMEM_DEMO_FAULT";

    private readonly Option<double?> _seconds = ToolOptions.Seconds("--seconds", "-s", "how long traffic runs; with --wait, stop after this long (without --wait at most 3600)", 0.1, 604800, 5);
    private readonly Option<int> _payload = ToolOptions.Int("--payload", null, "BYTES", "UDP payload bytes per datagram (a 9000-byte MTU less IPv4 and UDP headers)", 1, 8972, 1400);
    private readonly Option<int> _queues = ToolOptions.Int("--queues", "-q", "N", "rx queues: queue 0 stays on system pages, the rest are bound to the region", 2, 16, 2);
    private readonly Option<int> _flows = ToolOptions.Int("--flows", null, "N", "flows, one socket and consumer thread each", 1, 64, 2);
    private readonly Option<bool> _json = ToolOptions.Json("print the result as one JSON object (snake_case keys; see the README) instead of the summary");
    private readonly Option<bool> _wait = ToolOptions.Flag("--wait", null, "keep running, rebinding the devmem queues every second, until Ctrl+C, SIGTERM, end of stdin or --seconds (for trace, top, pools)");
    private readonly Option<bool> _progress = ToolOptions.Flag("--progress", null, "print a plain progress line every second (also when stdout is not a terminal)");

    public DemoCommand()
        : base("demo", "SimNic demo: queues bound to a memfd region, verified multi-flow traffic (the default command)")
    {
        Options.Add(_seconds);
        Options.Add(_payload);
        Options.Add(_queues);
        Options.Add(_flows);
        Options.Add(_json);
        Options.Add(_wait);
        Options.Add(_progress);
    }

    public override IReadOnlyList<string> Examples =>
    [
        "netmem",
        "netmem demo --seconds 10 --payload 9000 --queues 3 --flows 6",
        "netmem demo --json",
        "netmem demo --wait            # keep running for trace/top/pools",
    ];

    public override int Run(ParseResult result, CommandContext context)
    {
        bool wait = result.GetValue(_wait);
        bool json = result.GetValue(_json);
        TimeSpan seconds = TimeSpan.FromSeconds(result.GetValue(_seconds)!.Value);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        if (wait)
        {
            if (result.GetResult(_seconds) is { Implicit: false })
            {
                stop.CancelAfter(seconds);
            }

            StdinWatch.CancelAtEndOfInput(stop);
        }

        var demo = new DemoOptions
        {
            Seconds = seconds.TotalSeconds,
            Payload = result.GetValue(_payload),
            Queues = result.GetValue(_queues),
            Flows = result.GetValue(_flows),
            Wait = wait,
            Progress = json ? ProgressMode.None
                : result.GetValue(_progress) ? ProgressMode.Lines
                : context.Terminal.IsTerminal ? ProgressMode.Live
                : ProgressMode.None,
            IsForeground = () => context.Terminal.IsForeground,
            RebindPeriod = wait ? TimeSpan.FromSeconds(1) : null,
            InjectCorruption = Environment.GetEnvironmentVariable(FaultVariable) == "corrupt-payload",
        };

        DemoResult outcome;
        try
        {
            outcome = DemoRunner.Run(demo, context.Out, stop.Token, onRunning: () =>
            {
                if (wait)
                {
                    context.Out.WriteLine($"demo: running in pid {Environment.ProcessId}; Ctrl+C or SIGTERM stops");
                    context.Out.Flush();
                }
            });
        }
        catch (ArgumentException e)
        {
            throw CliException.Usage(e.Message);
        }

        if (json)
        {
            context.Out.WriteLine(JsonSerializer.Serialize(outcome, DemoJsonContext.Default.DemoResult));
        }
        else
        {
            DemoRunner.PrintSummary(outcome, context.Out);
        }

        return outcome.Ok ? ExitCodes.Ok : ExitCodes.Failure;
    }
}
