using System.Diagnostics.Tracing;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;
using Netmem.Diagnostics;

namespace Netmem.Tool.Tracing;

/// <summary>
/// An EventPipe session in another process, parsed with TraceEvent: the attach-and-parse part of
/// <c>netmem trace</c>, <c>top</c> and <c>pools</c>, and what the end-to-end tests use.
/// </summary>
/// <remarks>
/// <see cref="Start"/> opens the session over the target's diagnostic port
/// (<see cref="DiagnosticsClient"/>); <see cref="RunAsync"/> reads the stream on a worker thread
/// with <see cref="EventPipeEventSource"/> and its dynamic parser, handing every event of the
/// enabled providers to the callback as a <see cref="TraceEventRecord"/>, until
/// <see cref="Stop"/>, the cancellation token, or the target's exit ends the stream. The callback
/// runs on that worker thread, one event at a time.
/// <para>TraceEvent sorts events across threads and holds a thread's events back until an event
/// of another thread (or a sequence point, written only every few megabytes) proves no earlier
/// one can come. A quiet session would thus see a lone event only much later. Unless told
/// otherwise the session also enables the runtime's <c>System.Runtime</c> counters at one
/// second: their timer thread's events release what is held within about a second; they are
/// not passed to the callback.</para>
/// </remarks>
public sealed class EventPipeTraceSession : IDisposable
{
    /// <summary>The provider name of the runtime's metrics bridge, read by <c>netmem top</c>.</summary>
    public const string MetricsProviderName = "System.Diagnostics.Metrics";

    /// <summary>The provider enabled as a once-a-second heartbeat (see remarks).</summary>
    public const string HeartbeatProviderName = "System.Runtime";

    private readonly int _pid;
    private readonly EventPipeProvider[] _providers;
    private readonly HashSet<string> _providerNames;
    private EventPipeSession? _session;
    private int _stopped;

    /// <param name="pid">The target process.</param>
    /// <param name="providers">The providers whose events reach the callback.</param>
    /// <param name="heartbeat">Also enable the once-a-second <see cref="HeartbeatProviderName"/> counters so quiet streams are delivered promptly.</param>
    public EventPipeTraceSession(int pid, IEnumerable<EventPipeProvider> providers, bool heartbeat = true)
    {
        ArgumentNullException.ThrowIfNull(providers);
        _pid = pid;
        EventPipeProvider[] wanted = [.. providers];
        _providerNames = new HashSet<string>(wanted.Select(p => p.Name), StringComparer.Ordinal);
        _providers = heartbeat && !_providerNames.Contains(HeartbeatProviderName)
            ? [.. wanted, new EventPipeProvider(HeartbeatProviderName, EventLevel.Informational, 0, new Dictionary<string, string> { ["EventCounterIntervalSec"] = "1" })]
            : wanted;
    }

    /// <summary>
    /// The Netmem provider: lifecycle events, plus per-netmem events when <paramref name="verbose"/>,
    /// plus an introspection dump at the start when <paramref name="dump"/> (the answer that
    /// shows the process has Netmem).
    /// </summary>
    public static EventPipeProvider NetmemProvider(bool verbose, bool dump = false)
    {
        EventKeywords keywords = NetmemEventSource.Keywords.Lifecycle
            | (verbose ? NetmemEventSource.Keywords.Netmem : 0)
            | (dump ? NetmemEventSource.Keywords.Introspection : 0);
        return new EventPipeProvider(NetmemEventSource.SourceName, verbose ? EventLevel.Verbose : EventLevel.Informational, (long)keywords, dump ? DumpArguments() : null);
    }

    /// <summary>The Netmem provider asking for an introspection dump and nothing else.</summary>
    public static EventPipeProvider NetmemDumpProvider() =>
        new(NetmemEventSource.SourceName, EventLevel.Informational, (long)NetmemEventSource.Keywords.Introspection, DumpArguments());

    /// <summary>
    /// <c>Command=Dump</c>: the keyword alone makes a current Netmem dump; the argument also
    /// makes one in a process built against a Netmem that needed it.
    /// </summary>
    private static Dictionary<string, string> DumpArguments() =>
        new() { [NetmemEventSource.CommandArgument] = NetmemEventSource.DumpArgumentValue };

    /// <summary>
    /// The metrics bridge publishing the <c>Netmem</c> meter every <paramref name="refreshSeconds"/>,
    /// configured the way dotnet-counters does it.
    /// </summary>
    public static EventPipeProvider MetricsProvider(string sessionId, int refreshSeconds = 1) =>
        new(MetricsProviderName, EventLevel.Informational, 0x7, new Dictionary<string, string>
        {
            ["SessionId"] = sessionId,
            ["ClientId"] = sessionId,
            ["Metrics"] = NetmemMeter.MeterName,
            ["RefreshInterval"] = refreshSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["MaxTimeSeries"] = "1000",
            ["MaxHistograms"] = "10",
        });

    /// <summary>How long <see cref="Start"/> waits by default for the process to answer the request to start the session.</summary>
    public static readonly TimeSpan DefaultStartTimeout = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Opens the session. Throws <see cref="ServerNotAvailableException"/> when the process has
    /// no diagnostic port (not a .NET process, or gone), and <see cref="TimeoutException"/> when
    /// it does not answer within <paramref name="answerWithin"/> (default
    /// <see cref="DefaultStartTimeout"/>): its runtime is stuck, and without the bound the tool
    /// would wait with it forever.
    /// </summary>
    public void Start(TimeSpan? answerWithin = null)
    {
        if (_session is not null)
        {
            throw new InvalidOperationException("The session is already started.");
        }

        var client = new DiagnosticsClient(_pid);
        TimeSpan limit = answerWithin ?? DefaultStartTimeout;
        using var answer = new CancellationTokenSource(limit);
        try
        {
            _session = client.StartEventPipeSessionAsync(_providers, requestRundown: false, circularBufferMB: 64, answer.Token).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException) when (answer.IsCancellationRequested)
        {
            throw new TimeoutException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"process {_pid} did not answer the request to start a trace session within {limit.TotalSeconds:0.#} s"));
        }
    }

    /// <summary>
    /// Reads the stream until it ends, handing each event of the enabled providers to
    /// <paramref name="onEvent"/>. Starts the session first if needed. Cancelling stops the session.
    /// The result says whether the stream ended because the session was stopped or on its own
    /// (the target exited, or the stream broke: then with the parser's error).
    /// </summary>
    public Task<SessionEnd> RunAsync(Action<TraceEventRecord> onEvent, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(onEvent);
        if (_session is null)
        {
            Start();
        }

        EventPipeSession session = _session!;
        return Task.Factory.StartNew(
            () =>
            {
                using CancellationTokenRegistration reg = cancellation.Register(Stop);
                using var source = new EventPipeEventSource(session.EventStream);
                source.Dynamic.All += e =>
                {
                    if (!_providerNames.Contains(e.ProviderName))
                    {
                        return;
                    }

                    var fields = new List<KeyValuePair<string, object?>>(e.PayloadNames.Length);
                    for (int i = 0; i < e.PayloadNames.Length; i++)
                    {
                        fields.Add(new(e.PayloadNames[i], e.PayloadValue(i)));
                    }

                    onEvent(new TraceEventRecord(e.ProviderName, e.EventName, (int)e.ID, e.TimeStamp, fields));
                };
                try
                {
                    source.Process();
                }
                catch (Exception) when (Volatile.Read(ref _stopped) != 0)
                {
                    // The stream was torn down by Stop; what was read has been delivered.
                }
#pragma warning disable CA1031 // A stream cut off mid-event (the target died) fails in the parser with any exception type; the caller reports it.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    return new SessionEnd(false, e.GetType().Name + ": " + e.Message);
                }

                return new SessionEnd(Volatile.Read(ref _stopped) != 0, null);
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
    }

    /// <summary>Stops the session; the stream ends once the target has flushed it. Safe to call more than once or after the target exited.</summary>
    public void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0 || _session is null)
        {
            return;
        }

        try
        {
            _session.Stop();
        }
        catch (Exception e) when (e is ServerNotAvailableException or IOException or ServerErrorException or TimeoutException or ObjectDisposedException)
        {
            // The target is gone or the session already ended.
        }
    }

    /// <summary>Stops the session and releases it.</summary>
    public void Dispose()
    {
        Stop();
        _session?.Dispose();
    }
}

/// <summary>How a session's stream ended.</summary>
/// <param name="Stopped">True when <see cref="EventPipeTraceSession.Stop"/> (or cancellation) ended it; false when the stream ended on its own.</param>
/// <param name="Error">The parser's error when the stream broke off, else null.</param>
public readonly record struct SessionEnd(bool Stopped, string? Error);
