using Netmem.Tool.Cli;
using Netmem.Tool.Tracing;

namespace Netmem.Tool.Commands;

/// <summary>
/// <c>netmem top --pid P</c>: a live per-pool table of the <c>Netmem</c> meter, read over
/// EventPipe from the runtime's <c>System.Diagnostics.Metrics</c> EventSource as dotnet-counters
/// reads it, refreshed every second.
/// </summary>
internal sealed class TopCommand : ICommand
{
    /// <summary>Clears a terminal and homes the cursor; only used when stdout is a terminal.</summary>
    private const string ClearScreen = "\u001b[H\u001b[2J";

    public string Name => "top";

    public string Summary => "live per-pool counters of a running process, refreshed every second";

    public string Usage => "netmem top --pid P [--seconds N]";

    public OptionKinds Options => OptionKinds.Pid | OptionKinds.Seconds;

    public IReadOnlyList<string> Examples =>
    [
        "netmem top --pid 4242",
        "netmem top --pid 4242 --seconds 3 > top.txt   # plain lines when redirected",
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

        string sessionId = Guid.NewGuid().ToString();
        var table = new PoolMetricsTable(sessionId);
        using var session = new EventPipeTraceSession(pid, [EventPipeTraceSession.MetricsProvider(sessionId)]);
        TargetProcess.Attach(session, pid);
        int errorsShown = 0;
        Task run = session.RunAsync(
            e =>
            {
                if (!table.Add(e))
                {
                    return;
                }

                for (; errorsShown < table.Errors.Count; errorsShown++)
                {
                    context.Error.WriteLine($"netmem: {table.Errors[errorsShown]}");
                }

                string now = DateTime.Now.ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture);
                if (context.IsInteractive)
                {
                    context.Out.Write($"{ClearScreen}netmem top - process {pid} - {now} (Ctrl+C quits)\n\n{table.Render()}");
                }
                else
                {
                    context.Out.Write($"--- process {pid} {now}\n{table.Render()}");
                }

                context.Out.Flush();
            },
            stop.Token);
        run.GetAwaiter().GetResult();
        for (; errorsShown < table.Errors.Count; errorsShown++)
        {
            context.Error.WriteLine($"netmem: {table.Errors[errorsShown]}");
        }

        return table.Intervals > 0 || table.Errors.Count == 0 ? ExitCodes.Ok : ExitCodes.Failure;
    }
}
