namespace Netmem.Tool.Tracing;

/// <summary>One event parsed from an EventPipe stream: its provider, name and payload fields in order.</summary>
public sealed record TraceEventRecord(
    string ProviderName,
    string EventName,
    int EventId,
    DateTime TimeStamp,
    IReadOnlyList<KeyValuePair<string, object?>> Fields)
{
    /// <summary>The payload by field name.</summary>
    public IReadOnlyDictionary<string, object?> Payload { get; } = Fields.ToDictionary(f => f.Key, f => f.Value);

    /// <summary>A payload field as a string (invariant culture), or null when absent.</summary>
    public string? Get(string field) =>
        Payload.TryGetValue(field, out object? v) ? Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) : null;

    /// <summary>A payload field converted to a 64-bit integer (throws when absent or not numeric).</summary>
    public long GetInt64(string field) => Convert.ToInt64(Payload[field], System.Globalization.CultureInfo.InvariantCulture);
}
