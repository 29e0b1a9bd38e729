namespace Netmem.Net;

/// <summary>
/// A driver's queue management operations (the kernel's <c>netdev_queue_mgmt_ops</c>), which let
/// the core restart one rx queue with new memory without taking the device down. Queue memory is
/// whatever the driver needs (its pools and descriptor ring), opaque to the core.
/// </summary>
/// <remarks>
/// Core calls these under the device lock, in the order alloc → check → stop → start → free.
/// <see cref="MemAlloc"/> runs while traffic still flows on the old memory, so it is where a
/// driver that cannot take unreadable memory fails (with EOPNOTSUPP); it must leave no trace
/// when it throws.
/// </remarks>
public interface IQueueManagementOps
{
    /// <summary>Allocates new memory for queue <paramref name="queueIndex"/>, taking the queue's current provider.</summary>
    object MemAlloc(NetDevice device, int queueIndex);

    /// <summary>Frees memory returned by <see cref="MemAlloc"/> or <see cref="Stop"/>.</summary>
    void MemFree(NetDevice device, object queueMemory);

    /// <summary>Starts the queue on <paramref name="queueMemory"/>.</summary>
    void Start(NetDevice device, object queueMemory, int queueIndex);

    /// <summary>Stops the queue and returns the memory it was running on.</summary>
    object Stop(NetDevice device, int queueIndex);
}

/// <summary>The device's header-data split setting (ethtool <c>tcp-data-split</c>).</summary>
public enum TcpDataSplit
{
    /// <summary>The driver has not said (the kernel's <c>ETHTOOL_TCP_DATA_SPLIT_UNKNOWN</c>); binding a region fails as with <see cref="Disabled"/>.</summary>
    Unknown = 0,
    /// <summary>Headers and payload share buffers: binding a dmabuf region to a queue fails with EINVAL.</summary>
    Disabled = 1,
    /// <summary>Headers go to readable header buffers and payload to the payload pool: a region can be bound.</summary>
    Enabled = 2,
}
