namespace Netmem.Drivers.Common;

/// <summary>
/// What <see cref="QueueMemory.Allocate(Netmem.Net.NetDevice, int, QueueMemoryOptions)"/> needs to
/// build one rx queue's memory: a driver fills it once from its own options and hands it to
/// <see cref="NapiDriver{TQueue}"/>, which allocates every queue's memory from it.
/// </summary>
/// <param name="RxRingSize">Rx descriptors posted per queue.</param>
/// <param name="PoolSize">Recycle ring size of each page pool.</param>
/// <param name="PayloadAllowsUnreadable">
/// Whether the payload pool is created with <see cref="PagePoolFlags.AllowUnreadableNetmem"/>;
/// false is a driver that cannot take unreadable memory (binding fails with EOPNOTSUPP).
/// </param>
/// <param name="MaxFrame">The largest frame the device receives; sizes the header pool's pages without header-data split.</param>
/// <param name="Arena">Arena for system pages; null for the shared arena.</param>
internal sealed record QueueMemoryOptions(int RxRingSize, int PoolSize, bool PayloadAllowsUnreadable, int MaxFrame, PageArena? Arena);
