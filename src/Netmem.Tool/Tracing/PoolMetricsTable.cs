using System.Globalization;
using System.Text;
using Netmem.Diagnostics;

namespace Netmem.Tool.Tracing;

/// <summary>
/// Per-pool values of the <c>Netmem</c> meter, rebuilt from the events the
/// <c>System.Diagnostics.Metrics</c> EventSource publishes each refresh interval (one
/// <c>CounterRateValuePublished</c> / <c>UpDownCounterRateValuePublished</c> /
/// <c>GaugeValuePublished</c> per instrument and pool, between <c>CollectionStart</c> and
/// <c>CollectionStop</c>). Feed it every event; <see cref="Add"/> returns true at the end of an
/// interval, when <see cref="Render"/> shows a complete table.
/// </summary>
internal sealed class PoolMetricsTable
{
    private readonly Dictionary<int, PoolRow> _rows = [];
    private readonly string _sessionId;
    private int _cycle;

    public PoolMetricsTable(string sessionId) => _sessionId = sessionId;

    /// <summary>Errors the metrics source reported (another session running, callback failures).</summary>
    public List<string> Errors { get; } = [];

    /// <summary>Completed collection intervals seen so far.</summary>
    public int Intervals { get; private set; }

    /// <summary>Pools reported in the last complete interval, by id.</summary>
    public IReadOnlyList<PoolRow> Rows => [.. _rows.Values.Where(r => r.Cycle == _cycle).OrderBy(r => r.Id)];

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
                return true;
            case "CounterRateValuePublished":
            case "UpDownCounterRateValuePublished":
                Record(e, e.Get("value"), e.Get("rate"));
                return false;
            case "GaugeValuePublished":
                Record(e, e.Get("lastValue"), null);
                return false;
            case "Error":
            case "ObservableInstrumentCallbackError":
                Errors.Add(e.Get("errorMessage") ?? e.EventName);
                return false;
            case "MultipleSessionsNotSupportedError":
                Errors.Add($"another metrics session ({e.Get("runningSessionId")}) is running in the target; close it (dotnet-counters?) and retry");
                return false;
            case "MultipleSessionsConfiguredIncorrectlyError":
                Errors.Add("another metrics session with different settings is running in the target");
                return false;
            default:
                return false;
        }
    }

    private void Record(TraceEventRecord e, string? value, string? rate)
    {
        if (e.Get("meterName") != NetmemMeter.MeterName || e.Get("instrumentName") is not { } instrument)
        {
            return;
        }

        Dictionary<string, string> tags = ParseTags(e.Get("tags") ?? string.Empty);
        if (!tags.TryGetValue(NetmemMeter.TagPoolId, out string? idText) || !int.TryParse(idText, CultureInfo.InvariantCulture, out int id))
        {
            return;
        }

        if (!_rows.TryGetValue(id, out PoolRow? row))
        {
            row = new PoolRow { Id = id };
            _rows[id] = row;
        }

        row.Cycle = _cycle;
        row.Name = tags.GetValueOrDefault(NetmemMeter.TagPoolName, row.Name);
        row.Ifindex = tags.GetValueOrDefault(NetmemMeter.TagIfindex, row.Ifindex);
        row.Queue = tags.GetValueOrDefault(NetmemMeter.TagQueue, row.Queue);
        if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v))
        {
            row.Values[instrument] = v;
        }

        if (double.TryParse(rate, NumberStyles.Float, CultureInfo.InvariantCulture, out double r))
        {
            row.Rates[instrument] = r;
        }
    }

    /// <summary>
    /// Parses <c>k=v,k=v</c> as the metrics source writes tags. A comma inside a pool name is
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
            if (key is NetmemMeter.TagPoolId or NetmemMeter.TagPoolName or NetmemMeter.TagIfindex or NetmemMeter.TagQueue)
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

    /// <summary>The table of the last complete interval, one line per pool.</summary>
    public string Render()
    {
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"{"ID",5} {"NAME",-20} {"IF/Q",7} {"INFLIGHT",9} {"MEM",9} {"ALLOC_FAST",12} {"FAST/S",10} {"ALLOC_SLOW",10} {"RC_CACHED",12} {"RC_RING",12} {"RING_FULL",10}");
        IReadOnlyList<PoolRow> rows = Rows;
        foreach (PoolRow r in rows)
        {
            sb.AppendLine(CultureInfo.InvariantCulture,
                $"{r.Id,5} {Clip(r.Name, 20),-20} {r.Ifindex + "/" + r.Queue,7} {r.Get(NetmemMeter.Inflight),9:0} {Bytes(r.Get(NetmemMeter.InflightMemory)),9} {r.Get(NetmemMeter.AllocFast),12:0} {r.Rate(NetmemMeter.AllocFast),10:0} {r.Get(NetmemMeter.AllocSlow),10:0} {r.Get(NetmemMeter.RecycleCached),12:0} {r.Get(NetmemMeter.RecycleRing),12:0} {r.Get(NetmemMeter.RecycleRingFull),10:0}");
        }

        if (rows.Count == 0)
        {
            sb.AppendLine("(no page pools)");
        }

        return sb.ToString();
    }

    private static string Clip(string s, int width) => s.Length <= width ? s : s[..(width - 1)] + "~";

    private static string Bytes(double b) => b switch
    {
        >= 1 << 30 => (b / (1 << 30)).ToString("0.0", CultureInfo.InvariantCulture) + "G",
        >= 1 << 20 => (b / (1 << 20)).ToString("0.0", CultureInfo.InvariantCulture) + "M",
        >= 1 << 10 => (b / (1 << 10)).ToString("0.0", CultureInfo.InvariantCulture) + "K",
        _ => b.ToString("0", CultureInfo.InvariantCulture),
    };

    /// <summary>One pool's latest values by instrument name.</summary>
    internal sealed class PoolRow
    {
        public int Id { get; init; }

        public string Name { get; set; } = string.Empty;

        public string Ifindex { get; set; } = "0";

        public string Queue { get; set; } = "-1";

        /// <summary>The interval this pool was last reported in.</summary>
        public int Cycle { get; set; }

        public Dictionary<string, double> Values { get; } = new(StringComparer.Ordinal);

        /// <summary>Change during the last interval, per instrument.</summary>
        public Dictionary<string, double> Rates { get; } = new(StringComparer.Ordinal);

        public double Get(string instrument) => Values.GetValueOrDefault(instrument);

        public double Rate(string instrument) => Rates.GetValueOrDefault(instrument);
    }
}
