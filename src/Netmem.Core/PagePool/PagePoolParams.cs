using Netmem.Net;

namespace Netmem;

/// <summary>Page pool behaviour flags (the kernel's <c>PP_FLAG_*</c>).</summary>
[Flags]
public enum PagePoolFlags
{
    /// <summary>No flag: no DMA mapping, no sync, and the pool never takes a memory provider (readable pages only).</summary>
    None = 0,

    /// <summary>The pool maps pages for DMA and keeps their DMA address in the descriptor.</summary>
    DmaMap = 1,

    /// <summary>The pool syncs pages for the device on recycle (needs <see cref="DmaMap"/> and <see cref="PagePoolParams.MaxLen"/>).</summary>
    DmaSyncDev = 2,

    /// <summary>
    /// The driver can take unreadable netmem (<c>net_iov</c>) from this pool: the pool takes its
    /// queue's memory provider. A header pool leaves it off and keeps readable system pages.
    /// </summary>
    AllowUnreadableNetmem = 4,
}

/// <summary>DMA direction of pool memory.</summary>
public enum DmaDirection
{
    /// <summary>The device both reads and writes the memory (<c>DMA_BIDIRECTIONAL</c>).</summary>
    Bidirectional = 0,
    /// <summary>The device reads the memory: transmit buffers (<c>DMA_TO_DEVICE</c>).</summary>
    ToDevice = 1,
    /// <summary>The device writes the memory: receive buffers, the default (<c>DMA_FROM_DEVICE</c>).</summary>
    FromDevice = 2,
}

/// <summary>Parameters of a <see cref="PagePool"/> (the kernel's <c>page_pool_params</c>).</summary>
public sealed record class PagePoolParams
{
    /// <summary>Page order: 0 for 4 KiB pages up to 5 for 128 KiB (<see cref="PageArena.MaxOrder"/>).</summary>
    public int Order { get; init; }

    /// <summary>Size of the recycle ring (rounded up to a power of two); 0 means 1024.</summary>
    public int PoolSize { get; init; } = 1024;

    /// <summary>NUMA node to take pages from; -1 for any.</summary>
    public int Nid { get; init; } = -1;

    /// <summary>The consumer binding. Null creates a shared-mode pool served by per-CPU caches.</summary>
    public NapiContext? Napi { get; init; }

    /// <summary>The rx queue this pool is created for; a provider on it is taken only with <see cref="PagePoolFlags.AllowUnreadableNetmem"/>.</summary>
    public RxQueue? Queue { get; init; }

    /// <summary>Id of the device the pool feeds (ifindex), for introspection; 0 when none.</summary>
    public int Ifindex { get; init; }

    /// <summary>Which way the device moves data in this pool's memory; <see cref="DmaDirection.FromDevice"/> (receive) by default.</summary>
    public DmaDirection DmaDir { get; init; } = DmaDirection.FromDevice;

    /// <summary>Largest length synced for the device on recycle (with <see cref="PagePoolFlags.DmaSyncDev"/>).</summary>
    public int MaxLen { get; init; }

    /// <summary>Offset into the page where the device writes (with <see cref="PagePoolFlags.DmaSyncDev"/>).</summary>
    public int Offset { get; init; }

    /// <summary>Behaviour flags: DMA mapping, sync for the device, and whether the pool takes its queue's memory provider.</summary>
    public PagePoolFlags Flags { get; init; }

    /// <summary>Name for logs and introspection.</summary>
    public string? Name { get; init; }

    /// <summary>What the pool feeds on its queue; a metrics tag that outlives the pool (see <see cref="Diagnostics.NetmemMeter"/>).</summary>
    public PagePoolRole Role { get; init; }

    /// <summary>Arena for system pages; null means <see cref="PageArena.Shared"/>.</summary>
    public PageArena? Arena { get; init; }

    /// <summary>Clock for deferred destroy; null means <see cref="TimeProvider.System"/>. Tests inject a manual one.</summary>
    public TimeProvider? TimeProvider { get; init; }

    /// <summary>How often a pool destroyed with pages in flight retries (the kernel waits about a second).</summary>
    public TimeSpan DestroyRetryPeriod { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How often a lingering pool reports a stalled shutdown (the kernel warns about every minute).</summary>
    public TimeSpan StalledReportPeriod { get; init; } = TimeSpan.FromSeconds(60);
}
