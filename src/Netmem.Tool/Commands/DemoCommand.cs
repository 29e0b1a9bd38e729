using System.Text.Json;
using Netmem.Tool.Cli;
using Netmem.Tool.Demo;

namespace Netmem.Tool.Commands;

/// <summary>
/// The default command: the whole system on synthetic traffic (see <see cref="DemoRunner"/>).
/// With <c>--wait</c> it runs until stopped, rebinding queue 1 every second so a tracer sees
/// pools and bindings come and go under live traffic; it prints one line starting
/// <c>demo: running</c> once traffic flows, and stops on Ctrl+C, SIGTERM, end of stdin (when
/// stdin is a pipe or file other than /dev/null) or after <c>--seconds</c>.
/// </summary>
internal sealed class DemoCommand : ICommand
{
    /// <summary>
    /// Fault injection for tests of the failure path: <c>corrupt-payload</c> flips one byte in
    /// the region under a consumer, which its verification must catch (exit code 1).
    /// </summary>
    public const string FaultVariable = "NETMEM_DEMO_FAULT";

    public string Name => "demo";

    public string Summary => "SimNic demo: queue 1 bound to a memfd region, verified multi-flow traffic (the default)";

    public string Usage => "netmem [demo] [--seconds N] [--payload B] [--queues N] [--flows N] [--json] [--wait]";

    public OptionKinds Options => OptionKinds.Wait | OptionKinds.Seconds | OptionKinds.Payload | OptionKinds.Queues | OptionKinds.Flows | OptionKinds.Json;

    public IReadOnlyList<string> Examples =>
    [
        "netmem",
        "netmem demo --seconds 10 --payload 9000 --queues 3 --flows 6",
        "netmem demo --json",
        "netmem demo --wait            # keep running for trace/top/pools",
    ];

    public int Run(CommandOptions options, CommandContext context)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        if (options.Wait)
        {
            if (options.Duration is { } d)
            {
                stop.CancelAfter(d);
            }

            StdinWatch.CancelAtEndOfInput(stop);
        }

        var demo = new DemoOptions
        {
            Seconds = options.Duration?.TotalSeconds ?? 5,
            Payload = options.Payload ?? 1400,
            Queues = options.Queues ?? 2,
            Flows = options.Flows ?? 2,
            Wait = options.Wait,
            Progress = !options.Json,
            RebindPeriod = options.Wait ? TimeSpan.FromSeconds(1) : null,
            InjectCorruption = Environment.GetEnvironmentVariable(FaultVariable) == "corrupt-payload",
        };

        DemoResult result;
        try
        {
            result = DemoRunner.Run(demo, context.Out, stop.Token, onRunning: () =>
            {
                if (options.Wait)
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

        if (options.Json)
        {
            context.Out.WriteLine(JsonSerializer.Serialize(result, DemoJsonContext.Default.DemoResult));
        }
        else
        {
            DemoRunner.PrintSummary(result, context.Out);
        }

        return result.Ok ? ExitCodes.Ok : ExitCodes.Failure;
    }
}
