using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Netmem.Tool.Cli;
using Netmem.Tool.Tracing;

namespace Netmem.Tool.Commands;

/// <summary>
/// <c>netmem top --pid P</c>: a live table of the <c>Netmem</c> meter, one row per device, queue,
/// pool role and provider, with totals and rates per second, read over EventPipe from the
/// runtime's <c>System.Diagnostics.Metrics</c> EventSource as dotnet-counters reads it.
/// </summary>
/// <remarks>
/// On a terminal where it is the foreground job it redraws in place, fits the terminal's width,
/// and takes <c>q</c> (quit) and <c>p</c> (pause/resume); otherwise it prints one plain table per
/// interval. It says so when the target's metrics backend hits a limit or stops publishing,
/// rather than showing stale numbers.
/// </remarks>
internal sealed class TopCommand : ToolCommand
{
    /// <summary>Clears a terminal and homes the cursor; only used in the foreground of a terminal.</summary>
    private const string ClearScreen = "\u001b[H\u001b[2J";

    /// <summary>Intervals without data after which top says the target stopped publishing.</summary>
    private const int StallIntervals = 3;

    private readonly Option<int> _pid = ToolOptions.Pid();
    private readonly Option<int> _refresh = ToolOptions.Int("--refresh-interval", null, "SECONDS", "seconds between updates", 1, 300, 1);
    private readonly Option<string?> _device = ToolOptions.Text("--device", "-d", "NAME", "show only this device's queues");
    private readonly Option<int?> _queue = QueueFilter();
    private readonly Option<double?> _seconds = ToolOptions.Seconds("--seconds", "-s", "stop after this long (default: until q, Ctrl+C or the process exits)", 0.1, 604800);
    private readonly Option<double?> _timeout = ToolOptions.AttachTimeout();

    public TopCommand()
        : base("top", "live counters of a running process per device, queue and pool role, with rates")
    {
        Options.Add(_pid);
        Options.Add(_refresh);
        Options.Add(_device);
        Options.Add(_queue);
        Options.Add(_seconds);
        Options.Add(_timeout);
    }

    public override IReadOnlyList<string> Examples =>
    [
        "netmem top --pid 4242            # q quits, p pauses",
        "netmem top --pid 4242 --device netmem0 --queue 1 --refresh-interval 2",
        "netmem top --pid 4242 --seconds 3 > top.txt   # plain tables when redirected",
    ];

    public override int Run(ParseResult result, CommandContext context)
    {
        int pid = result.GetValue(_pid);
        int refresh = result.GetValue(_refresh);
        string? device = result.GetValue(_device);
        int? queue = result.GetValue(_queue);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        if (result.GetValue(_seconds) is { } d)
        {
            stop.CancelAfter(TimeSpan.FromSeconds(d));
        }

        string sessionId = Guid.NewGuid().ToString();
        var table = new SeriesMetricsTable(sessionId, refresh);
        var view = new View(context, pid, refresh, device, queue, table);
        Task<NetmemProbe> run = Task.Factory.StartNew(
            () => TargetSession.Run(
                pid,
                [EventPipeTraceSession.MetricsProvider(sessionId, refresh), EventPipeTraceSession.NetmemDumpProvider()],
                TimeSpan.FromSeconds(result.GetValue(_timeout)!.Value),
                e =>
                {
                    if (table.Add(e))
                    {
                        view.IntervalClosed();
                    }
                },
                null,
                stop.Token),
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);

        // This thread takes keys and watches for a target that stopped publishing.
        while (!((IAsyncResult)run).AsyncWaitHandle.WaitOne(100))
        {
            if (context.ReadKey?.Invoke() is { } key && context.IsInteractive)
            {
                if (key.KeyChar is 'q' or 'Q')
                {
                    stop.Cancel();
                }
                else if (key.KeyChar is 'p' or 'P')
                {
                    view.TogglePause();
                }
            }

            view.CheckStalled();
        }

        try
        {
            run.GetAwaiter().GetResult();
        }
        finally
        {
            view.Finish();
        }

        return table.Intervals > 0 || table.Errors.Count == 0 ? ExitCodes.Ok : ExitCodes.Failure;
    }

    private static Option<int?> QueueFilter()
    {
        Option<int> q = ToolOptions.Int("--queue", null, "INDEX", "show only this queue index", -1, 65535);
        var o = new Option<int?>("--queue") { Description = q.Description, HelpName = q.HelpName };
        o.CustomParser = r => q.CustomParser!(r);
        return o;
    }

    /// <summary>What top shows and when: frames, pause, notes about limits, errors and stalls.</summary>
    private sealed class View(CommandContext context, int pid, int refresh, string? device, int? queue, SeriesMetricsTable table)
    {
        private readonly Lock _lock = new();
        private readonly Stopwatch _sinceData = Stopwatch.StartNew();
        private int _errorsShown;
        private int _limitsShown;
        private bool _paused;
        private bool _stallReported;

        public void IntervalClosed()
        {
            lock (_lock)
            {
                _sinceData.Restart();
                _stallReported = false;
                ReportNotes();
                if (!_paused)
                {
                    Draw(null);
                }
            }
        }

        public void TogglePause()
        {
            lock (_lock)
            {
                _paused = !_paused;
                Draw(_paused ? "paused; p resumes" : null);
            }
        }

        public void CheckStalled()
        {
            lock (_lock)
            {
                // The first interval also waits for the attach and the backend's start.
                double grace = (StallIntervals * refresh) + (table.Intervals == 0 ? 20 : 5);
                if (_stallReported || _sinceData.Elapsed < TimeSpan.FromSeconds(grace))
                {
                    return;
                }

                _stallReported = true;
                string note = string.Create(CultureInfo.InvariantCulture, $"no metrics from process {pid} for {_sinceData.Elapsed.TotalSeconds:0} s: its metrics backend is not publishing (another session, or a limit)");
                if (context.IsInteractive)
                {
                    Draw(note);
                }
                else
                {
                    context.Error.WriteLine("netmem: " + note);
                }
            }
        }

        public void Finish()
        {
            lock (_lock)
            {
                ReportNotes();
                context.Out.Flush();
            }
        }

        private void ReportNotes()
        {
            for (; _errorsShown < table.Errors.Count; _errorsShown++)
            {
                context.Error.WriteLine($"netmem: {table.Errors[_errorsShown]}");
            }

            for (; _limitsShown < table.Limits.Count; _limitsShown++)
            {
                context.Error.WriteLine($"netmem: {table.Limits[_limitsShown]}");
            }
        }

        private void Draw(string? note)
        {
            string now = DateTime.Now.ToString("HH:mm:ss", CultureInfo.InvariantCulture);
            string filter = (device is null ? string.Empty : $" device {device}") + (queue is null ? string.Empty : $" queue {queue}");
            if (context.IsInteractive)
            {
                string limits = table.Limits.Count == 0 ? string.Empty : $"\nLIMIT: {table.Limits[^1]}";
                string status = note is null ? string.Empty : $"\n{note}";
                context.Out.Write($"{ClearScreen}netmem top - process {pid} - {now} - every {refresh} s{filter} (q quits, p pauses){limits}{status}\n\n{table.Render(context.Terminal.Width, device, queue)}");
            }
            else if (note is null)
            {
                context.Out.Write($"--- process {pid} {now}{filter}\n{table.Render(0, device, queue)}");
            }

            context.Out.Flush();
        }
    }
}
