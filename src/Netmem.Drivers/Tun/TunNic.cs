using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Drivers.Tun;

/// <summary>
/// A driver whose frames come from the Linux kernel through <c>/dev/net/tun</c>: packets the
/// kernel routes to the TUN interface are received into the same queue memory as a hardware
/// NIC's (a readable header pool and a payload pool that takes the queue's memory provider),
/// steered to <see cref="DevmemSocket"/>s by flow, and counted by reason when they cannot be
/// delivered. The device lives in a network namespace the caller created.
/// </summary>
/// <remarks>
/// The device also transmits from a region bound with <see cref="NetDevice.BindDmabufTx"/>: a
/// <see cref="DevmemSocket"/> connected through <see cref="NapiDriver{TQueue}.Device"/> sends
/// datagrams whose payload the kernel reads straight from the region (one <c>writev</c> per
/// datagram to the TUN, which the namespace's kernel receives); see <see cref="TxCounters"/>.
/// </remarks>
public sealed class TunNic : NapiDriver<TunNicQueue>, IRxChannelOps
{
    private readonly TunNicOptions _options;

    /// <summary>The devmem transmit queue; null only if the constructor failed before it.</summary>
    private readonly TunNicTxQueue? _tx;

    /// <summary>Creates the TUN device in <paramref name="ns"/>, configures it and starts its queues.</summary>
    /// <exception cref="NativeException">No permission, no <c>/dev/net/tun</c>, or the name is in use (the message says which).</exception>
    public TunNic(NetNamespace ns, TunNicOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(ns);
        _options = options ?? new TunNicOptions();
        if (_options.Queues < 1 || _options.Queues > TunFile.MaxQueues)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.Queues, $"A TunNic has 1..{TunFile.MaxQueues} queues.");
        }

        if (_options.Mtu < 68 || _options.Mtu > 9000)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.Mtu, "MTU must be 68..9000.");
        }

        if (_options.TxRingSize < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(options), _options.TxRingSize, "The transmit ring holds at least one packet.");
        }

        Tun = TunDevice.Create(ns, _options.Name, _options.Queues, multiQueue: _options.Queues > 1);
        try
        {
            Tun.Configure(_options.Configuration ?? new TunConfiguration { Mtu = _options.Mtu });
        }
        catch
        {
            Dispose();
            throw;
        }

        RegisterAndStart(
            Tun.Name,
            _options.Queues,
            _options.HeaderDataSplit,
            new QueueMemoryOptions(_options.RxRingSize, _options.PoolSize, _options.PayloadPoolAllowsUnreadable, _options.Mtu, _options.Arena),
            _options.PinCpus,
            (i, cpu) => new TunNicQueue(this, i, Tun.GetFd(i), cpu));

        // Only a multi-queue TUN can take a queue out of service (TUNSETQUEUE).
        Device.ChannelOps = Tun.IsMultiQueue ? this : null;

        // Transmit writes to queue 0's descriptor, which stays attached whatever the channel count.
        int mtu = _options.Configuration?.Mtu ?? _options.Mtu;
        _tx = new TunNicTxQueue(Device, Dma, Tun.GetFd(0), mtu, _options.TxRingSize);
        AttachTx(_tx);
    }

    /// <summary>The kernel TUN device.</summary>
    public TunDevice Tun { get; }

    /// <summary>The options the NIC was created with.</summary>
    public TunNicOptions Options => _options;

    /// <summary>Delivered plus dropped, over all queues: every packet read from the kernel.</summary>
    public long PacketsSeen => Queues.Sum(q => q.Counters.Packets + q.Counters.Drops);

    /// <summary>How the devmem transmit's writes to the TUN went (the queue's own counters are <see cref="NapiDriver{TQueue}.TxStats"/>).</summary>
    public TunTxCounters TxCounters => _tx?.Counters ?? default;

    /// <summary>The kernel's packet counters for the interface.</summary>
    public TunCounters ReadKernelCounters() => Tun.ReadCounters();

    /// <inheritdoc/>
    /// <remarks>
    /// A multi-queue TUN attaches and detaches queue descriptors (TUNSETQUEUE): the kernel spreads
    /// flows over the attached queues only. Growing starts each queue's poll loop on fresh memory,
    /// then attaches its descriptor; shrinking detaches the descriptor first, so the kernel stops
    /// steering to it, then stops the poll loop and frees the memory. Packets the kernel had
    /// queued on a descriptor at the instant it is detached are dropped by the kernel
    /// (<c>__tun_detach</c> purges the queue), which no reader can prevent. A failure restores
    /// the old set of queues.
    /// </remarks>
    public void SetRxChannels(NetDevice device, int oldCount, int newCount) => ChangeRxChannels(oldCount, newCount);

    /// <summary>Starts queue <paramref name="index"/>'s poll loop, then attaches its descriptor.</summary>
    protected override void ActivateQueue(int index)
    {
        base.ActivateQueue(index);
        try
        {
            TunFile.SetQueue(Tun.GetFd(index), attach: true);
        }
        catch
        {
            base.DeactivateQueue(index);
            throw;
        }
    }

    /// <summary>Detaches queue <paramref name="index"/>'s descriptor, then stops its poll loop and frees its memory.</summary>
    protected override void DeactivateQueue(int index)
    {
        TunFile.SetQueue(Tun.GetFd(index), attach: false);
        base.DeactivateQueue(index);
    }

    /// <summary>Stops the queues, closes every socket, frees queue memory, unregisters and removes the TUN device.</summary>
    protected override void Dispose(bool disposing)
    {
        bool first = !IsDisposed;
        base.Dispose(disposing);
        if (disposing && first)
        {
            Tun.Dispose();
        }
    }

    /// <summary>Names the NIC and its device for logs.</summary>
    public override string ToString() => $"TunNic {Device}";
}
