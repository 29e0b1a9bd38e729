using System.Globalization;
using System.Text;
using Netmem.Diagnostics;

namespace Netmem.Tool.Tracing;

/// <summary>
/// The <c>Netmem</c> meter's series as <c>netmem top</c> shows them, rebuilt from the events the
/// <c>System.Diagnostics.Metrics</c> EventSource publishes each refresh interval (one
/// <c>CounterRateValuePublished</c> / <c>UpDownCounterRateValuePublished</c> /
/// <c>GaugeValuePublished</c> per instrument and series, between <c>CollectionStart</c> and
/// <c>CollectionStop</c>). Feed it every event; <see cref="Add"/> returns true at the end of an
/// interval, when <see cref="Render"/> shows a complete table.
/// </summary>
/// <remarks>
/// A row is one series: device, queue, pool role and provider kind, the tags
/// <see cref="NetmemMeter"/> uses. Only series reported in the last complete interval are kept:
/// when a queue's pools are all gone its row goes, so an hour of queue restarts keeps the same
/// few rows and the same memory.
/// </remarks>
internal sealed class SeriesMetricsTable
{
    /// <summary>At most this many distinct error messages are kept.</summary>
    private const int MaxErrors = 20;

    private static readonly string[] KnownTags = [NetmemMeter.TagDevice, NetmemMeter.TagQueue, NetmemMeter.TagRole, NetmemMeter.TagProvider];

    private readonly Dictionary<SeriesKey, SeriesRow> _rows = [];
    private readonly string _sessionId;
    private readonly double _intervalSeconds;
    private int _cycle;

    public SeriesMetricsTable(string sessionId, double intervalSeconds)
    {
        _sessionId = sessionId;
        _intervalSeconds = intervalSeconds;
    }

    /// <summary>Errors the metrics source reported (another session running, callback failures), each once.</summary>
    public List<string> Errors { get; } = [];

    /// <summary>Limits of the metrics backend that were hit (series or histogram limit), each once.</summary>
    public List<string> Limits { get; } = [];

    /// <summary>Completed collection intervals seen so far.</summary>
    public int Intervals { get; private set; }

    /// <summary>
    /// The series reported in the last complete interval that have a live pool or memory in
    /// flight (a series whose pools are gone is still published, with zeros), by device, queue,
    /// role and provider.
    /// </summary>
    public IReadOnlyList<SeriesRow> Rows =>
        [.. _rows.Values.Where(r => r.Cycle == _cycle && (r.Get(NetmemMeter.Pools) > 0 || r.Get(NetmemMeter.Inflight) > 0)).OrderBy(r => r.Key.Device, StringComparer.Ordinal).ThenBy(r => r.Key.Queue).ThenBy(r => r.Key.Role, StringComparer.Ordinal).ThenBy(r => r.Key.Provider, StringComparer.Ordinal)];

    /// <summary>Rows currently held (live series only, once an interval has closed).</summary>
    public int HeldRows => _rows.Count;

    /// <summary>Takes one event; true when it closed an interval.</summary>
    public bool Add(TraceEventRecord e)
    {
        string? session = e.Get("sessionId");
        if (session is not null && session != _sessionId && session != "SHARED")
        {
            return false;
        }

        // TraceEvent names start/stop events "Collection/Start"; the EventSource calls them "CollectionStart".
        switch (e.EventName.Replace("/", string.Empty, StringComparison.Ordinal))
        {
            case "CollectionStart":
                _cycle++;
                return false;
            case "CollectionStop":
                Intervals++;
                foreach (SeriesKey gone in _rows.Where(kv => kv.Value.Cycle != _cycle).Select(kv => kv.Key).ToList())
                {
                    _rows.Remove(gone);
                }

                return true;
            case "CounterRateValuePublished":
            case "UpDownCounterRateValuePublished":
                Record(e, e.Get("value"), e.Get("rate"));
                return false;
            case "GaugeValuePublished":
                Record(e, e.Get("lastValue"), null);
                return false;
            case "TimeSeriesLimitReached":
                Note(Limits, "the target's metrics series limit is reached: series beyond it are not published (the limit is per session; see MaxTimeSeries)");
                return false;
            case "HistogramLimitReached":
                Note(Limits, "the target's metrics histogram limit is reached");
                return false;
            case "Error":
            case "ObservableInstrumentCallbackError":
                Note(Errors, e.Get("errorMessage") ?? e.EventName);
                return false;
            case "MultipleSessionsNotSupportedError":
                Note(Errors, $"another metrics session ({e.Get("runningSessionId")}) is running in the target; close it (dotnet-counters?) and retry");
                return false;
            case "MultipleSessionsConfiguredIncorrectlyError":
                Note(Errors, "another metrics session with different settings is running in the target");
                return false;
            default:
                return false;
        }
    }

    private static void Note(List<string> list, string message)
    {
        if (list.Count < MaxErrors && !list.Contains(message))
        {
            list.Add(message);
        }
    }

    private void Record(TraceEventRecord e, string? value, string? rate)
    {
        if (e.Get("meterName") != NetmemMeter.MeterName || e.Get("instrumentName") is not { } instrument)
        {
            return;
        }

        Dictionary<string, string> tags = ParseTags(e.Get("tags") ?? string.Empty);
        var key = new SeriesKey(
            tags.GetValueOrDefault(NetmemMeter.TagDevice, NetmemMeter.NoDevice),
            int.TryParse(tags.GetValueOrDefault(NetmemMeter.TagQueue), CultureInfo.InvariantCulture, out int q) ? q : -1,
            tags.GetValueOrDefault(NetmemMeter.TagRole, "other"),
            tags.GetValueOrDefault(NetmemMeter.TagProvider, "?"));
        if (!_rows.TryGetValue(key, out SeriesRow? row))
        {
            row = new SeriesRow(key);
            _rows[key] = row;
        }

        row.Cycle = _cycle;
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
        {
            row.Values[instrument] = v;
        }

        if (double.TryParse(rate, NumberStyles.Float, CultureInfo.InvariantCulture, out double r))
        {
            row.PerSecond[instrument] = r / _intervalSeconds;
        }
    }

    /// <summary>
    /// Parses <c>k=v,k=v</c> as the metrics source writes tags. A comma inside a device name is
    /// kept: a piece that does not start with a known key continues the previous value.
    /// </summary>
    internal static Dictionary<string, string> ParseTags(string tags)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        string? lastKey = null;
        foreach (string piece in tags.Split(','))
        {
            int eq = piece.IndexOf('=', StringComparison.Ordinal);
            string key = eq > 0 ? piece[..eq] : string.Empty;
            if (KnownTags.Contains(key))
            {
                result[key] = piece[(eq + 1)..];
                lastKey = key;
            }
            else if (lastKey is not null)
            {
                result[lastKey] += "," + piece;
            }
        }

        return result;
    }

    /// <summary>
    /// The table of the last complete interval, one line per series matching the filters,
    /// narrowed to <paramref name="width"/> columns (0: all) by dropping the least important
    /// columns first.
    /// </summary>
    public string Render(int width = 0, string? device = null, int? queue = null)
    {
        IReadOnlyList<SeriesRow> rows = [.. Rows.Where(r => (device is null || r.Key.Device == device) && (queue is null || r.Key.Queue == queue))];
        Column[] columns = Fitting(width);
        var sb = new StringBuilder();
        sb.AppendLine(string.Join(' ', columns.Select(c => c.Pad(c.Header))).TrimEnd());
        foreach (SeriesRow r in rows)
        {
            sb.AppendLine(string.Join(' ', columns.Select(c => c.Pad(c.Cell(r)))).TrimEnd());
        }

        if (rows.Count == 0)
        {
            sb.AppendLine(_rows.Count == 0 ? "(no page pools)" : "(no page pools match the filter)");
        }

        return sb.ToString();
    }

    /// <summary>
    /// The columns that fit in <paramref name="width"/> (0: all): taken by priority, then from
    /// left to right, while they fit; shown in their usual order.
    /// </summary>
    private static Column[] Fitting(int width)
    {
        if (width <= 0)
        {
            return Column.All;
        }

        var chosen = new HashSet<Column>();
        int used = -1;
        foreach (Column c in Column.All.OrderBy(c => c.Priority))
        {
            if (c.Priority == 1 || used + 1 + c.Width <= width)
            {
                chosen.Add(c);
                used += 1 + c.Width;
            }
        }

        return [.. Column.All.Where(chosen.Contains)];
    }

    /// <summary>What identifies a row.</summary>
    internal readonly record struct SeriesKey(string Device, int Queue, string Role, string Provider);

    /// <summary>One series' latest values by instrument name.</summary>
    internal sealed class SeriesRow(SeriesKey key)
    {
        public SeriesKey Key { get; } = key;

        /// <summary>The interval this series was last reported in.</summary>
        public int Cycle { get; set; }

        public Dictionary<string, double> Values { get; } = new(StringComparer.Ordinal);

        /// <summary>Change per second during the last interval, per counter.</summary>
        public Dictionary<string, double> PerSecond { get; } = new(StringComparer.Ordinal);

        public double Get(string instrument) => Values.GetValueOrDefault(instrument);

        public double Rate(string instrument) => PerSecond.GetValueOrDefault(instrument);
    }

    /// <summary>A column: header, width, cell text and priority (1 always shown; higher dropped first when narrow).</summary>
    private sealed record Column(string Header, int Width, bool Left, int Priority, Func<SeriesRow, string> Cell)
    {
        public static readonly Column[] All =
        [
            new("DEVICE", 10, true, 1, r => Clip(r.Key.Device, 10)),
            new("QUEUE", 5, false, 1, r => r.Key.Queue.ToString(CultureInfo.InvariantCulture)),
            new("ROLE", 7, true, 1, r => r.Key.Role),
            new("PROVIDER", 8, true, 1, r => Clip(r.Key.Provider, 8)),
            new("POOLS", 5, false, 1, r => Units.Count(r.Get(NetmemMeter.Pools))),
            new("INFLIGHT", 9, false, 1, r => Units.Count(r.Get(NetmemMeter.Inflight))),
            new("MEM", 8, false, 2, r => Units.Bytes(r.Get(NetmemMeter.InflightMemory))),
            new("ALLOC_FAST", 13, false, 1, r => Units.Count(r.Get(NetmemMeter.AllocFast))),
            new("FAST/S", 9, false, 1, r => Units.Rate(r.Rate(NetmemMeter.AllocFast))),
            new("ALLOC_SLOW", 11, false, 3, r => Units.Count(r.Get(NetmemMeter.AllocSlow) + r.Get(NetmemMeter.AllocSlowHighOrder))),
            new("SLOW/S", 9, false, 2, r => Units.Rate(r.Rate(NetmemMeter.AllocSlow) + r.Rate(NetmemMeter.AllocSlowHighOrder))),
            new("RC_CACHED", 13, false, 3, r => Units.Count(r.Get(NetmemMeter.RecycleCached))),
            new("CACHED/S", 9, false, 2, r => Units.Rate(r.Rate(NetmemMeter.RecycleCached))),
            new("RC_RING", 13, false, 3, r => Units.Count(r.Get(NetmemMeter.RecycleRing))),
            new("RING/S", 9, false, 2, r => Units.Rate(r.Rate(NetmemMeter.RecycleRing))),
            new("RING_FULL", 10, false, 3, r => Units.Count(r.Get(NetmemMeter.RecycleRingFull))),
        ];

        public string Pad(string text) => Left ? text.PadRight(Width) : text.PadLeft(Width);

        private static string Clip(string s, int width) => s.Length <= width ? s : s[..(width - 1)] + "~";
    }
}
