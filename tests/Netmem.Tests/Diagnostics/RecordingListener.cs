using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using Netmem.Diagnostics;

namespace Netmem.Tests.Diagnostics;

/// <summary>An in-process listener on the Netmem source that records every event it gets.</summary>
internal sealed class RecordingListener : EventListener
{
    public RecordingListener(EventLevel level, EventKeywords keywords, IDictionary<string, string?>? arguments = null)
    {
        // Enabled here, not in OnEventSourceCreated: that runs from the base constructor, before this one.
        EnableEvents(NetmemEventSource.Log, level, keywords, arguments);
    }

    public ConcurrentQueue<EventWrittenEventArgs> Events { get; } = new();

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventSource == NetmemEventSource.Log)
        {
            Events.Enqueue(eventData);
        }
    }

    /// <summary>The events named <paramref name="name"/> whose <paramref name="field"/> equals <paramref name="value"/>.</summary>
    public List<EventWrittenEventArgs> Where(string name, string field, object value) =>
        [.. Events.Where(e => e.EventName == name && Equals(Field(e, field), value))];

    public static object? Field(EventWrittenEventArgs e, string name)
    {
        int i = e.PayloadNames!.IndexOf(name);
        return i < 0 ? null : e.Payload![i];
    }

    /// <summary>The payload as (name, value) pairs in order.</summary>
    public static (string Name, object? Value)[] Fields(EventWrittenEventArgs e) =>
        [.. e.PayloadNames!.Select((n, i) => (n, e.Payload![i]))];
}
