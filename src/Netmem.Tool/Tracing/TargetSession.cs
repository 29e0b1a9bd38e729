using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Netmem.Diagnostics;
using Netmem.Tool.Cli;

namespace Netmem.Tool.Tracing;

/// <summary>
/// Attaching to a process the way <c>trace</c>, <c>top</c> and <c>pools</c> do: over its
/// diagnostic port, whatever the process is (a framework-dependent app, a single-file one, an
/// app that loads Netmem from anywhere). Whether it has Netmem is judged from what the session
/// answers, never from its files: the Netmem provider is enabled with the introspection keyword,
/// and a Netmem process answers with a dump at once (<see cref="NetmemProbe"/>).
/// </summary>
internal static class TargetSession
{
    /// <summary>
    /// Runs one session on <paramref name="pid"/> until <paramref name="stop"/>, handing every
    /// event except the probe's dumps to <paramref name="onEvent"/> and the first dump to
    /// <paramref name="onAnswer"/>. Throws <see cref="CliException"/> with the documented exit
    /// code when there is no such process (3), no Netmem answer within
    /// <paramref name="answerTimeout"/> (4), or the process exits meanwhile (5).
    /// </summary>
    /// <remarks>One of <paramref name="providers"/> must be the Netmem provider with the introspection keyword. Returns the answered probe.</remarks>
    public static NetmemProbe Run(
        int pid,
        IEnumerable<Microsoft.Diagnostics.NETCore.Client.EventPipeProvider> providers,
        TimeSpan answerTimeout,
        Action<TraceEventRecord> onEvent,
        Action<EventPipeTraceSession, NetmemProbe>? onAnswer,
        CancellationToken stop)
    {
        EnsureExists(pid);
        using var session = new EventPipeTraceSession(pid, providers);
        Attach(session, pid, answerTimeout);
        using var probe = new NetmemProbe(session, answerTimeout);
        SessionEnd end = session.RunAsync(
            e =>
            {
                bool wasAnswered = probe.Answered;
                if (probe.Take(e))
                {
                    if (!wasAnswered && probe.Answered)
                    {
                        onAnswer?.Invoke(session, probe);
                    }

                    return;
                }

                onEvent(e);
            },
            stop).GetAwaiter().GetResult();

        if (!end.Stopped || probe.TimedOut)
        {
            // A dying process closes its diagnostics socket before the kernel marks it exited:
            // give it a moment (bounded) before calling the stream's end unexpected.
            if (!end.Stopped && !probe.TimedOut)
            {
                SpinWait.SpinUntil(() => !Exists(pid), TimeSpan.FromSeconds(2));
            }

            if (!Exists(pid))
            {
                throw new CliException(ExitCodes.TargetExited, $"process {pid} exited");
            }

            if (probe.TimedOut)
            {
                throw NotNetmem(pid, string.Create(CultureInfo.InvariantCulture, $"no Netmem provider answered within {answerTimeout.TotalSeconds:0.#} s; it has not loaded Netmem or not created a page pool yet"));
            }

            throw new CliException(ExitCodes.Failure, $"the event stream of process {pid} ended unexpectedly" + (end.Error is null ? string.Empty : ": " + end.Error));
        }

        return probe;
    }

    /// <summary>Exit code 3 unless <paramref name="pid"/> names a live process.</summary>
    public static void EnsureExists(int pid)
    {
        if (!Exists(pid))
        {
            throw new CliException(ExitCodes.NoSuchProcess, $"no process with pid {pid}");
        }
    }

    /// <summary>Exit code 4 with what was seen.</summary>
    public static CliException NotNetmem(int pid, string detail) =>
        new(ExitCodes.NotNetmem, $"process {pid} has not loaded Netmem ({detail})");

    /// <summary>
    /// Opens <paramref name="session"/>, turning "no diagnostic port" and no answer within
    /// <paramref name="answerTimeout"/> into clear errors.
    /// </summary>
    public static void Attach(EventPipeTraceSession session, int pid, TimeSpan answerTimeout)
    {
        try
        {
            session.Start(answerTimeout);
        }
        catch (ServerNotAvailableException)
        {
            EnsureExists(pid);
            throw NotNetmem(pid, "it has no .NET diagnostic port: not a .NET process, or started with DOTNET_EnableDiagnostics=0");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException(ExitCodes.Failure, $"cannot attach to process {pid}: {e.Message}");
        }
        catch (TimeoutException e)
        {
            throw new CliException(ExitCodes.Failure, $"cannot attach: {e.Message}");
        }
    }

    /// <summary>True while the process runs: it exists and is not a zombie waiting for its parent.</summary>
    public static bool Exists(int pid)
    {
        if (!OperatingSystem.IsLinux())
        {
            try
            {
                using var p = System.Diagnostics.Process.GetProcessById(pid);
                return !p.HasExited;
            }
            catch (ArgumentException)
            {
                return false;
            }
        }

        try
        {
            // /proc/PID/stat: "pid (comm) S ..."; the state follows the last ')'.
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close < 0 || close + 2 >= stat.Length || stat[close + 2] is not ('Z' or 'X');
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Directory.Exists($"/proc/{pid}");
        }
    }
}

/// <summary>
/// The answer that shows a process has Netmem: any event of the Netmem provider, and in
/// particular the introspection dump it writes when a session enables the introspection
/// keyword. Stops the session when no answer comes within the timeout.
/// </summary>
internal sealed class NetmemProbe : IDisposable
{
    private readonly ITimer _timer;
    private readonly List<(string Kind, string Json)> _partial = [];
    private int _answered;
    private int _timedOut;

    public NetmemProbe(EventPipeTraceSession session, TimeSpan timeout)
    {
        _timer = TimeProvider.System.CreateTimer(
            _ =>
            {
                if (Volatile.Read(ref _answered) == 0 && Interlocked.Exchange(ref _timedOut, 1) == 0)
                {
                    session.Stop();
                }
            },
            null,
            timeout,
            Timeout.InfiniteTimeSpan);
    }

    /// <summary>True once the Netmem provider said anything.</summary>
    public bool Answered => Volatile.Read(ref _answered) != 0;

    /// <summary>True when the timeout stopped the session before any answer.</summary>
    public bool TimedOut => Volatile.Read(ref _timedOut) != 0 && !Answered;

    /// <summary>The first complete dump: (kind, JSON) in the order the process wrote them; empty until then.</summary>
    public IReadOnlyList<(string Kind, string Json)> Dump { get; private set; } = [];

    /// <summary>Takes one event; true when it is a dump event, which the caller does not show.</summary>
    public bool Take(TraceEventRecord e)
    {
        if (e.ProviderName != NetmemEventSource.SourceName || Volatile.Read(ref _timedOut) != 0)
        {
            return false;
        }

        bool first = Dump.Count == 0;
        if (e.EventName == nameof(NetmemEventSource.IntrospectionDump))
        {
            if (first && e.Get("kind") is { } kind)
            {
                _partial.Add((kind, e.Get("json") ?? "null"));
            }

            return true;
        }

        if (e.EventName == nameof(NetmemEventSource.IntrospectionDumpCompleted))
        {
            if (first)
            {
                Dump = [.. _partial];
                Volatile.Write(ref _answered, 1);
            }

            return true;
        }

        Volatile.Write(ref _answered, 1);
        return false;
    }

    /// <summary>Stops the timer.</summary>
    public void Dispose() => _timer.Dispose();
}
