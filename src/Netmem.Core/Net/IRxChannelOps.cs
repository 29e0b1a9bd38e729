namespace Netmem.Net;

/// <summary>
/// A driver's channel operation (the kernel's <c>ethtool_ops.set_channels</c> for rx): start or
/// stop rx queues when <see cref="NetDevice.SetRxChannels"/> changes how many are active.
/// </summary>
/// <remarks>
/// The core has already checked the request (range, memory providers) and calls this under the
/// device lock. The driver only activates or deactivates queues, and loses no packet doing so:
/// traffic for a queue being deactivated goes to the queues that stay, and what the queue had
/// already taken in is delivered before it stops. On failure the driver leaves the old set of
/// queues running and throws; the core keeps the old count.
/// </remarks>
public interface IRxChannelOps
{
    /// <summary>
    /// Activates queues <paramref name="oldCount"/>..<paramref name="newCount"/>-1 when growing, or
    /// deactivates queues <paramref name="newCount"/>..<paramref name="oldCount"/>-1 when shrinking.
    /// </summary>
    void SetRxChannels(NetDevice device, int oldCount, int newCount);
}
