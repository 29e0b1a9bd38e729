using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Net;

namespace Netmem.Tool.Relay;

/// <summary>
/// The NIC-specific half of a <c>netmem relay</c> run: the device the region is bound to, the
/// relay's connected socket, the generator that feeds the relay's port and the far end that
/// verifies what the relay sends. <see cref="RelayRunner"/> does the rest (bindings, pacing,
/// settling, teardown and checks) the same way for every driver.
/// </summary>
internal abstract class RelayRig : IDisposable
{
    /// <summary>The driver's name in the summary.</summary>
    public abstract string Driver { get; }

    /// <summary>Rx queues of the device.</summary>
    public abstract int Queues { get; }

    /// <summary>The device the region is bound to (queue 0 for receive, and for transmit).</summary>
    public abstract NetDevice Device { get; }

    /// <summary>The largest frame a readable fragment may carry.</summary>
    public abstract int MaxFrame { get; }

    /// <summary>Packets handed to the far end by the device (the far end must receive each).</summary>
    public abstract long Delivered { get; }

    /// <summary>Datagrams the far end received.</summary>
    public abstract long FarReceived { get; }

    /// <summary>Datagrams the far end verified byte for byte.</summary>
    public abstract long FarVerified { get; }

    /// <summary>Datagrams the far end received with the wrong size or content.</summary>
    public abstract long FarMismatches { get; }

    /// <summary>Payload bytes the far end read from readable memory.</summary>
    public abstract long FarEndBytesCopied { get; }

    /// <summary>
    /// Payload bytes the driver's transmit copied before the device read them (a fallback where
    /// the device cannot send from the fragments where they lie); 0 on the devmem path.
    /// </summary>
    public virtual long DriverBytesCopied => 0;

    /// <summary>What ended the far end's thread early, if anything.</summary>
    public virtual Exception? FarEndFault => null;

    /// <summary>How the device receives and transmits, for the summary (null: nothing to add).</summary>
    public virtual string? DevicePath => null;

    /// <summary>Bytes the device moved (received on queue 0, transmitted, delivered to the far end).</summary>
    public abstract long DeviceBytes { get; }

    /// <summary>Who moves <see cref="DeviceBytes"/> on this device, for the summary.</summary>
    public abstract string DeviceBytesMovedBy { get; }

    /// <summary>The transmit queue's counters.</summary>
    public abstract TxQueueStats TxStats { get; }

    /// <summary>
    /// After both bindings: opens the relay's socket on its port, zero-copy and connected to the
    /// far end, and starts the far end's verifier for <paramref name="payload"/>-byte datagrams.
    /// </summary>
    public abstract DevmemSocket Open(int payload);

    /// <summary>Sends datagram <paramref name="seq"/> (its sequence payload) to the relay's port; false when there is no room now.</summary>
    public abstract bool TryGenerate(ulong seq);

    /// <summary>Datagrams the device's queues counted as dropped.</summary>
    public abstract long QueueDrops();

    /// <summary>Adds the queues' drops by reason to <paramref name="drops"/>.</summary>
    public abstract void AddQueueDrops(Dictionary<string, long> drops);

    /// <summary>Waits until the device is idle and stops the far end.</summary>
    public abstract void Quiesce();

    /// <summary>Closes the device (and its sockets), the far end and whatever the rig created.</summary>
    public abstract void Dispose();
}
