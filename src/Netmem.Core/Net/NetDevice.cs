#pragma warning disable CS1591 // Undocumented public members here are left to the devmem TX change; remove once they are documented.
using Netmem.Native;
using Netmem.Providers;

namespace Netmem.Net;

/// <summary>
/// A network device: rx queues, header-data split settings, attached XDP programs, up/down and
/// registration, the page pools created for it, and optional queue management ops.
/// </summary>
/// <remarks>
/// Configuration changes (provider open/close, queue restart, XDP, unregister) serialize on one
/// process-wide lock, the counterpart of the kernel's rtnl lock: binding checks read the device
/// and its pools under it, so nothing changes between a check and the act it guards.
/// </remarks>
public sealed partial class NetDevice
{
    /// <summary>The configuration lock (the kernel's rtnl).</summary>
    internal static readonly Lock Rtnl = new();

    private static int s_nextIfindex;
    private static readonly Dictionary<int, NetDevice> s_devices = [];

    private readonly RxQueue[] _rxQueues;
    private int _xdpPrograms;

    /// <summary>Active rx queues (the kernel's <c>real_num_rx_queues</c>): queues 0..n-1 run, the rest are parked.</summary>
    private int _realNumRxQueues;

    /// <summary>Header-data split setting; written only under <see cref="Rtnl"/> by <see cref="SetRingParams"/>.</summary>
    private TcpDataSplit _tcpDataSplit = TcpDataSplit.Unknown;

    /// <summary>Header-data split threshold; written only under <see cref="Rtnl"/> by <see cref="SetRingParams"/>.</summary>
    private int _hdsThreshold;

    public NetDevice(string name, int rxQueueCount, IQueueManagementOps? queueOps = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (rxQueueCount < 1 || rxQueueCount > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(rxQueueCount), rxQueueCount, "A device has 1..1024 rx queues.");
        }

        Name = name;
        QueueOps = queueOps;
        _rxQueues = new RxQueue[rxQueueCount];
        _realNumRxQueues = rxQueueCount;
        for (int i = 0; i < rxQueueCount; i++)
        {
            _rxQueues[i] = new RxQueue(i, new NapiContext($"{name}-napi{i}")) { Device = this };
        }
    }

    public string Name { get; }

    /// <summary>Interface index, assigned at <see cref="Register"/>; 0 before.</summary>
    public int Ifindex { get; private set; }

    /// <summary>
    /// Every rx queue the device has (the kernel's <c>num_rx_queues</c>), active or not; the first
    /// <see cref="RxChannelCount"/> of them are active.
    /// </summary>
    public IReadOnlyList<RxQueue> RxQueues => _rxQueues;

    /// <summary>Active rx queues (ethtool's rx channel count, the kernel's <c>real_num_rx_queues</c>); see <see cref="SetRxChannels"/>.</summary>
    public int RxChannelCount => Volatile.Read(ref _realNumRxQueues);

    /// <summary>The most rx channels <see cref="SetRxChannels"/> accepts: every queue the device has.</summary>
    public int MaxRxChannels => _rxQueues.Length;

    /// <summary>The driver's queue management ops, or null when it has none.</summary>
    public IQueueManagementOps? QueueOps { get; set; }

    public bool IsRegistered { get; private set; }

    public bool IsUp { get; private set; }

    /// <summary>
    /// Header-data split setting (ethtool <c>tcp-data-split</c>); must be <see cref="TcpDataSplit.Enabled"/>
    /// to bind a provider. Setting it goes through <see cref="SetRingParams"/> and its checks.
    /// </summary>
    /// <exception cref="NetmemException">EINVAL: anything but enabled while a queue has a memory provider.</exception>
    public TcpDataSplit TcpDataSplit
    {
        get => _tcpDataSplit;
        set => SetRingParams(tcpDataSplit: value);
    }

    /// <summary>
    /// Header-data split threshold in bytes (ethtool <c>hds-thresh</c>); must be 0 to bind a provider.
    /// Setting it goes through <see cref="SetRingParams"/> and its checks.
    /// </summary>
    /// <exception cref="NetmemException">EINVAL: non-zero while a queue has a memory provider.</exception>
    public int HdsThreshold
    {
        get => _hdsThreshold;
        set => SetRingParams(hdsThreshold: value);
    }

    /// <summary>Number of XDP programs attached.</summary>
    public int XdpProgramCount => Volatile.Read(ref _xdpPrograms);

    /// <summary>True when any rx queue has a memory provider.</summary>
    public bool HasBoundQueue => MinMemoryProviderChannelCount != 0;

    /// <summary>Live page pools created for this device (destroyed ones excluded).</summary>
    public IReadOnlyList<PagePool> PagePools =>
        PagePool.All.Where(p => !p.IsDestroyed && (p.Params.Queue?.Device == this || (Ifindex != 0 && p.Params.Ifindex == Ifindex))).ToList();

    /// <summary>Registered devices by ifindex.</summary>
    public static IReadOnlyList<NetDevice> All
    {
        get
        {
            lock (Rtnl)
            {
                return [.. s_devices.Values.OrderBy(d => d.Ifindex)];
            }
        }
    }

    /// <summary>Registers the device and assigns its ifindex.</summary>
    public void Register()
    {
        lock (Rtnl)
        {
            if (IsRegistered)
            {
                throw new NetmemException(Errno.EEXIST, $"device {Name} is already registered");
            }

            Ifindex = ++s_nextIfindex;
            s_devices[Ifindex] = this;
            IsRegistered = true;
        }
    }

    /// <summary>
    /// Unregisters the device: brings it down, uninstalls every memory provider from its queues
    /// (dropping the bindings' queue entries), and removes it from the device table.
    /// </summary>
    public void Unregister()
    {
        lock (Rtnl)
        {
            if (!IsRegistered)
            {
                return;
            }

            foreach (RxQueue q in _rxQueues)
            {
                if (q.MemoryProvider is { } mp)
                {
                    mp.Uninstall(q);
                    q.MemoryProvider = null;
                }
            }

            IsUp = false;
            s_devices.Remove(Ifindex);
            IsRegistered = false;
        }
    }

    public void Up()
    {
        lock (Rtnl)
        {
            if (!IsRegistered)
            {
                throw new NetmemException(Errno.ENODEV, $"device {Name} is not registered");
            }

            IsUp = true;
        }
    }

    public void Down()
    {
        lock (Rtnl)
        {
            IsUp = false;
        }
    }

    /// <summary>Attaches an XDP program. Fails with EBUSY while any queue has a memory provider.</summary>
    public void AttachXdp()
    {
        lock (Rtnl)
        {
            if (HasBoundQueue)
            {
                throw new NetmemException(Errno.EBUSY, $"{Name}: unable to attach XDP to a device using a memory provider");
            }

            _xdpPrograms++;
        }
    }

    public void DetachXdp()
    {
        lock (Rtnl)
        {
            if (_xdpPrograms == 0)
            {
                throw new NetmemException(Errno.ENOENT, $"{Name}: no XDP program attached");
            }

            _xdpPrograms--;
        }
    }

    /// <summary>
    /// Restarts rx queue <paramref name="queueIndex"/> on new memory: alloc new → check that a
    /// page pool took the queue's provider → stop → start → free old. On failure the queue keeps
    /// (or goes back to) its old memory and keeps working.
    /// </summary>
    public void RestartQueue(int queueIndex)
    {
        lock (Rtnl)
        {
            RestartQueueLocked(CheckQueueIndex(queueIndex));
        }
    }

    /// <summary>
    /// Installs <paramref name="provider"/> on a queue and restarts it, with each check the
    /// kernel makes, in its order. A failure leaves no provider on the queue.
    /// </summary>
    public void OpenMemoryProvider(int queueIndex, IMemoryProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        lock (Rtnl)
        {
            RxQueue rxq = CheckQueueIndex(queueIndex);
            if (TcpDataSplit != TcpDataSplit.Enabled)
            {
                throw new NetmemException(Errno.EINVAL, $"{Name}: tcp-data-split is disabled");
            }

            if (HdsThreshold != 0)
            {
                throw new NetmemException(Errno.EINVAL, $"{Name}: hds-thresh is not zero");
            }

            if (_xdpPrograms != 0)
            {
                throw new NetmemException(Errno.EEXIST, $"{Name}: unable to install a memory provider on a device with an XDP program attached");
            }

            if (rxq.MemoryProvider is not null)
            {
                throw new NetmemException(Errno.EEXIST, $"{Name}: designated queue {queueIndex} already has a memory provider bound");
            }

            if (QueueOps is null)
            {
                throw new NetmemException(Errno.EOPNOTSUPP, $"{Name}: driver does not support queue management, so a memory provider cannot be installed");
            }

            rxq.MemoryProvider = provider;
            try
            {
                RestartQueueLocked(rxq);
            }
            catch
            {
                rxq.MemoryProvider = null;
                throw;
            }
        }
    }

    /// <summary>
    /// Removes <paramref name="provider"/> from a queue and restarts it (the kernel's
    /// <c>__net_mp_close_rxq</c>), so that the queue's new payload pool no longer takes the
    /// provider and the old one, which did, is destroyed.
    /// </summary>
    /// <exception cref="NetmemException">
    /// EINVAL: the queue does not have <paramref name="provider"/>. Any error of the restart: the
    /// provider is off the queue all the same, but the queue may still run on the old memory.
    /// </exception>
    public void CloseMemoryProvider(int queueIndex, IMemoryProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        lock (Rtnl)
        {
            RxQueue rxq = CheckQueueIndex(queueIndex);
            if (!ReferenceEquals(rxq.MemoryProvider, provider))
            {
                throw new NetmemException(Errno.EINVAL, $"{Name}: queue {queueIndex} is not bound to {provider.Describe()}");
            }

            rxq.MemoryProvider = null;
            if (IsRegistered && QueueOps is not null)
            {
                RestartQueueLocked(rxq);
            }
        }
    }

    private RxQueue CheckQueueIndex(int queueIndex)
    {
        int active = _realNumRxQueues;
        if ((uint)queueIndex >= (uint)active)
        {
            throw new NetmemException(Errno.ERANGE, $"{Name}: rx queue index {queueIndex} out of range (device has {active})");
        }

        return _rxQueues[queueIndex];
    }

    private void RestartQueueLocked(RxQueue rxq)
    {
        IQueueManagementOps ops = QueueOps
            ?? throw new NetmemException(Errno.EOPNOTSUPP, $"{Name}: driver does not support queue management");
        int idx = rxq.Index;
        object newMem = ops.MemAlloc(this, idx);
        object oldMem;
        try
        {
            CheckMemoryProvider(rxq);
            oldMem = ops.Stop(this, idx);
        }
        catch
        {
            ops.MemFree(this, newMem);
            throw;
        }

        try
        {
            ops.Start(this, newMem, idx);
        }
        catch (Exception startError)
        {
            // The queue's configuration did not change, so its old memory must start again.
            try
            {
                ops.Start(this, oldMem, idx);
            }
            catch (Exception rollbackError)
            {
                // As the kernel does: warn, and at least free the old memory so it does not leak too.
                try
                {
                    ops.MemFree(this, oldMem);
                }
                finally
                {
                    ops.MemFree(this, newMem);
                }

                throw new AggregateException($"{Name}: queue {idx} failed to start on new memory and could not restart on the old; the queue is stopped", startError, rollbackError);
            }

            ops.MemFree(this, newMem);
            throw;
        }

        ops.MemFree(this, oldMem);
    }

    /// <summary>
    /// The driver said it allocated the queue's memory; check that a page pool on this queue
    /// really took the queue's provider (a driver may lack <see cref="PagePoolFlags.AllowUnreadableNetmem"/>).
    /// </summary>
    private void CheckMemoryProvider(RxQueue rxq)
    {
        IMemoryProvider? mp = rxq.MemoryProvider;
        if (mp is null)
        {
            return;
        }

        foreach (PagePool pool in PagePool.All)
        {
            if (!pool.IsDestroyed && ReferenceEquals(pool.Params.Queue, rxq) && ReferenceEquals(pool.MemoryProvider, mp))
            {
                return;
            }
        }

        throw new NetmemException(Errno.EOPNOTSUPP,
            $"{Name}: no page pool on queue {rxq.Index} took its memory provider ({mp.Describe()}); the driver cannot take unreadable netmem");
    }

    public override string ToString() => $"{Name}(ifindex {Ifindex})";
}
