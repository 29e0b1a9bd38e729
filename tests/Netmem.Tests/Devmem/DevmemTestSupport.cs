using System.Diagnostics.Tracing;
using Netmem.Devmem;
using Netmem.Diagnostics;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Devmem;

/// <summary>
/// Devmem tests share process-wide state (the provider toggle count, the binding id registry),
/// so they run one at a time and apart from every other collection.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DevmemCollection
{
    public const string Name = "Devmem";
}

/// <summary>A memfd region bound to a fresh device, and the pieces a provider pool needs.</summary>
internal sealed class DevmemSetup : IDisposable
{
    public const int NetIovSize = 4096;

    public DevmemSetup(int netIovs = 256, int maxSegmentSize = 0, bool deviceOnly = false)
    {
        Region = deviceOnly
            ? DmabufRegion.CreateDeviceOnly((long)netIovs * NetIovSize)
            : DmabufRegion.CreateMemfd("devmem-test", (long)netIovs * NetIovSize);
        Device = new DmaDevice("test-nic");
        Binding = DmabufBinding.Create(Region, Device, maxSegmentSize);
        Provider = new DevmemProvider(Binding);
        Queue = new RxQueue(0) { MemoryProvider = Provider };
    }

    public DmabufRegion Region { get; }

    public DmaDevice Device { get; }

    public DmabufBinding Binding { get; }

    public DevmemProvider Provider { get; }

    public RxQueue Queue { get; }

    public NapiContext Napi { get; } = new("devmem-test");

    public static PagePoolFlags PayloadFlags => PagePoolFlags.DmaMap | PagePoolFlags.AllowUnreadableNetmem;

    /// <summary>An owned-mode payload pool on <see cref="Queue"/>, as a driver creates one for devmem.</summary>
    public PagePool NewPool(PagePoolFlags? flags = null, int order = 0, int poolSize = 1024, int maxLen = 0) =>
        new(new PagePoolParams
        {
            Napi = Napi,
            Queue = Queue,
            Flags = flags ?? PayloadFlags,
            Order = order,
            PoolSize = poolSize,
            MaxLen = maxLen,
            Name = "devmem-payload",
        });

    /// <summary>Drops the creator's reference; the binding must be idle by then.</summary>
    public void Dispose()
    {
        if (Binding.RefCount > 0)
        {
            Binding.Put();
        }

        Region.Dispose();
    }
}

/// <summary>Collects binding lifecycle events written while it is alive.</summary>
internal sealed class BindingEventRecorder : EventListener
{
    private readonly List<EventWrittenEventArgs> _events = [];

    public IReadOnlyList<EventWrittenEventArgs> Destroyed(int bindingId)
    {
        lock (_events)
        {
            return _events
                .Where(e => e.EventId == NetmemEventSource.BindingDestroyedId && (int)e.Payload![0]! == bindingId)
                .ToList();
        }
    }

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == NetmemEventSource.SourceName)
        {
            EnableEvents(eventSource, EventLevel.Informational, NetmemEventSource.Keywords.Lifecycle);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        lock (_events)
        {
            _events.Add(eventData);
        }
    }
}
