using System.Text.Json;
using System.Text.Json.Serialization;

namespace Netmem.Net;

/// <summary>
/// One page pool as the netdev netlink family's page-pool-get reports it, plus the device name
/// and the pool's role on its queue (the series it is counted in by <see cref="Diagnostics.NetmemMeter"/>).
/// </summary>
public sealed record PagePoolInfo(
    int Id,
    string Name,
    int Ifindex,
    int Queue,
    int NapiId,
    long Inflight,
    long InflightMem,
    DateTimeOffset? DetachTime,
    int? DmabufId,
    bool Shared,
    int Order,
    string? Device = null,
    string Role = "other");

/// <summary>One rx queue, as queue-get reports it.</summary>
public sealed record QueueInfo(int Ifindex, string Device, int Id, string Type, int NapiId, int? DmabufId);

/// <summary>One device, as dev-get reports it.</summary>
public sealed record DeviceInfo(int Ifindex, string Name, bool Up, int RxQueues, string TcpDataSplit, int HdsThreshold, int XdpPrograms, bool QueueManagement);

/// <summary>One page pool's counters, as page-pool-stats-get reports them.</summary>
public sealed record PagePoolStatsInfo(int Id, string Name, int Ifindex, int Queue, PagePoolStats Stats);

/// <summary>
/// Introspection mirroring the kernel's netdev netlink family: page pools, queues and per-pool
/// stats, as records and as JSON. Reads live state; takes no locks on hot paths.
/// </summary>
public static partial class NetdevIntrospection
{
    /// <summary>Every pool alive or lingering after destroy.</summary>
    public static IReadOnlyList<PagePoolInfo> PagePools()
    {
        List<PagePoolInfo> list = [];
        foreach (PagePool p in PagePool.All)
        {
            long inflight = p.Inflight;
            list.Add(new PagePoolInfo(
                p.Id,
                p.Name,
                p.Params.Ifindex,
                p.Params.Queue?.Index ?? -1,
                p.Params.Napi?.Id ?? 0,
                inflight,
                inflight * p.NetmemSize,
                p.DetachedAt,
                DmabufIdOf(p),
                p.IsShared,
                p.Order,
                p.Params.Queue?.Device?.Name,
                Diagnostics.NetmemMeter.RoleName(p.Params.Role)));
        }

        return list;
    }

    /// <summary>Counters of every pool.</summary>
    public static IReadOnlyList<PagePoolStatsInfo> PagePoolStats()
    {
        List<PagePoolStatsInfo> list = [];
        foreach (PagePool p in PagePool.All)
        {
            list.Add(new PagePoolStatsInfo(p.Id, p.Name, p.Params.Ifindex, p.Params.Queue?.Index ?? -1, p.GetStats()));
        }

        return list;
    }

    /// <summary>Every active rx queue of every registered device (as queue-get lists <c>real_num_rx_queues</c>).</summary>
    public static IReadOnlyList<QueueInfo> Queues()
    {
        List<QueueInfo> list = [];
        foreach (NetDevice dev in NetDevice.All)
        {
            int active = dev.RxChannelCount;
            for (int i = 0; i < active; i++)
            {
                RxQueue q = dev.RxQueues[i];
                list.Add(new QueueInfo(dev.Ifindex, dev.Name, q.Index, "rx", q.Napi.Id, (q.MemoryProvider as IDmabufIdentified)?.DmabufId));
            }
        }

        return list;
    }

    /// <summary>Every registered device.</summary>
    public static IReadOnlyList<DeviceInfo> Devices()
    {
        List<DeviceInfo> list = [];
        foreach (NetDevice d in NetDevice.All)
        {
            list.Add(new DeviceInfo(d.Ifindex, d.Name, d.IsUp, d.RxChannelCount, d.TcpDataSplit.ToString().ToLowerInvariant(), d.HdsThreshold, d.XdpProgramCount, d.QueueOps is not null));
        }

        return list;
    }

    /// <summary>Queues as JSON (queue-get dump).</summary>
    public static string QueuesJson() => JsonSerializer.Serialize(Queues(), IntrospectionJsonContext.Default.IReadOnlyListQueueInfo);

    /// <summary>Devices as JSON (dev-get dump).</summary>
    public static string DevicesJson() => JsonSerializer.Serialize(Devices(), IntrospectionJsonContext.Default.IReadOnlyListDeviceInfo);

    /// <summary>The dmabuf binding id a pool's provider serves, or null for system pages.</summary>
    public static int? DmabufIdOf(PagePool pool) => pool.MemoryProvider is IDmabufIdentified d ? d.DmabufId : null;

    /// <summary>Page pools as JSON (page-pool-get dump).</summary>
    public static string PagePoolsJson() => JsonSerializer.Serialize(PagePools(), IntrospectionJsonContext.Default.IReadOnlyListPagePoolInfo);

    /// <summary>Per-pool stats as JSON (page-pool-stats-get dump).</summary>
    public static string PagePoolStatsJson() => JsonSerializer.Serialize(PagePoolStats(), IntrospectionJsonContext.Default.IReadOnlyListPagePoolStatsInfo);
}

/// <summary>A provider that serves a dmabuf binding, so introspection can report its id.</summary>
public interface IDmabufIdentified
{
    /// <summary>The binding id (netlink's dmabuf id).</summary>
    int DmabufId { get; }
}

[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(IReadOnlyList<PagePoolInfo>))]
[JsonSerializable(typeof(IReadOnlyList<PagePoolStatsInfo>))]
[JsonSerializable(typeof(IReadOnlyList<QueueInfo>))]
[JsonSerializable(typeof(IReadOnlyList<DeviceInfo>))]
internal sealed partial class IntrospectionJsonContext : JsonSerializerContext
{
}
