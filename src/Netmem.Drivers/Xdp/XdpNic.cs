using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Drivers.Xdp;

/// <summary>
/// A driver over a real Linux interface through AF_XDP: one socket per rx queue, fed by an XDP
/// program the driver builds and attaches itself. A queue bound to a <see cref="DmabufRegion"/>
/// registers that region as its UMEM, so the kernel (copy mode) or the NIC (zero-copy) writes
/// frames straight into the region's <c>net_iov</c>s; headers go to a header-pool buffer and the
/// payload reaches the <see cref="DevmemSocket"/> as a fragment of the region, with a token.
/// </summary>
/// <remarks>
/// <para>The interface must exist in <c>Namespace</c> (or the caller's namespace when none is
/// given). Construction attaches the program (native XDP, generic where the driver has none),
/// registers a <see cref="NetDevice"/> with header-data split enabled, and starts each queue on
/// an unbound memory: the driver's own readable UMEM, datagrams delivered as linear data. Bind
/// a region through <see cref="NapiDriver{TQueue}.Device"/>: the queue restarts onto the region.</para>
/// <para>The program is the kernel's, not the model's: <see cref="NetDevice.XdpProgramCount"/>
/// stays 0, and attaching a model XDP program is refused while a queue is bound, as for any
/// driver. Needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF) and kernel 5.9 or later (BPF links
/// for XDP).</para>
/// <para>Device registration, the queue management ops (a restart allocates an
/// <see cref="XdpQueueMemory"/>, stops the queue, starts it on the new memory and frees the old),
/// the poll threads, flow steering, delivery and teardown are <see cref="NapiDriver{TQueue}"/>'s;
/// this driver adds the program and, per running queue, an AF_XDP socket on the queue memory's
/// UMEM (<see cref="XdpNicQueue"/>). The channel count is the interface's, not the driver's:
/// <see cref="NetDevice.SetRxChannels"/> is refused with EOPNOTSUPP.</para>
/// <para>Devmem transmit (<see cref="NetDevice.BindDmabufTx"/>) goes out through the socket of a
/// bound queue, from the same UMEM: a send's payload must lie in the region bound for rx on a
/// running queue, and is posted to the kernel where it lies (<see cref="XdpNicTxQueue"/>).</para>
/// </remarks>
public sealed class XdpNic : NapiDriver<XdpNicQueue>
{
    /// <summary>The pools every queue's memory is built with; the UMEM is chosen per allocation.</summary>
    private readonly QueueMemoryOptions _queueMemory;

    /// <summary>The devmem transmit queue (AF_XDP tx from the bound queues' UMEMs).</summary>
    private readonly XdpNicTxQueue? _tx;

    /// <summary>Attaches to interface <paramref name="interfaceName"/> in <paramref name="ns"/> and starts its queues.</summary>
    /// <exception cref="NativeException">ENODEV when the interface does not exist there; EPERM without privileges; EINVAL for more queues than the interface has.</exception>
    public XdpNic(NetNamespace? ns, string interfaceName, XdpNicOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(interfaceName);
        Namespace = ns;
        Options = options ?? new XdpNicOptions();
        if (Options.Queues < 1 || Options.Queues > 256)
        {
            throw new ArgumentOutOfRangeException(nameof(options), Options.Queues, "An XdpNic has 1..256 queues.");
        }

        if (Options.TxDestinationMac is { Length: not 6 } badMac)
        {
            throw new ArgumentException($"a MAC address has 6 bytes; TxDestinationMac has {badMac.Length}.", nameof(options));
        }

        byte[] mac;
        (IfIndex, Mtu, mac) = InNamespace(() =>
        {
            using RtNetlink rtnl = RtNetlink.Open();
            LinkInfo link = rtnl.GetLink(interfaceName);
            if (link.RxQueues > 0 && Options.Queues > link.RxQueues)
            {
                throw new NativeException("XdpNic", Errno.EINVAL, $"interface '{interfaceName}' has {link.RxQueues} rx queues; {Options.Queues} asked.");
            }

            return (link.IfIndex, link.Mtu, link.MacAddress.Length == 6 ? link.MacAddress.ToArray() : new byte[6]);
        });
        MacAddress = mac;
        InterfaceName = interfaceName;
        Program = InNamespace(() => XdpProgram.Attach(IfIndex, Options.Queues, Options.GenericXdp));

        // An unbound queue copies payloads into the payload pool's pages through the rx
        // descriptor ring; a bound one posts its net_iovs to the fill ring instead.
        _queueMemory = new QueueMemoryOptions(Options.CopyDescriptors, Options.PoolSize, PayloadAllowsUnreadable: true, MaxFrame: Mtu + 14, Options.Arena);
        RegisterAndStart(interfaceName, Options.Queues, headerDataSplit: true, _queueMemory, Options.PinCpus, (i, cpu) => new XdpNicQueue(this, i, cpu));
        try
        {
            byte[] dst = Options.TxDestinationMac is { } d ? (byte[])d.Clone() : [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
            _tx = new XdpNicTxQueue(this, Options.TxQueueCapacity, (byte[])MacAddress.Clone(), dst);
            AttachTx(_tx);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The namespace the interface lives in (null: the caller's).</summary>
    public NetNamespace? Namespace { get; }

    /// <summary>The interface's name.</summary>
    public string InterfaceName { get; }

    /// <summary>The interface's index in its namespace.</summary>
    public int IfIndex { get; }

    /// <summary>The interface's MTU when the driver attached.</summary>
    public int Mtu { get; }

    /// <summary>The interface's MAC address (the source of transmitted frames).</summary>
    internal byte[] MacAddress { get; }

    /// <summary>What the devmem transmit refused, and its wakeups (all zero before the first send).</summary>
    public XdpTxCounters TxCounters => _tx?.Counters ?? default;

    /// <summary>Whether queue <paramref name="queue"/>'s socket sends multi-buffer frames (null while it has no tx ring).</summary>
    public bool? QueueTxMultiBuffer(int queue) => Queues[queue].TxPort?.MultiBuffer;

    /// <summary>The options the driver runs with.</summary>
    public XdpNicOptions Options { get; }

    /// <summary>The XDP program and map the driver attached.</summary>
    public XdpProgram Program { get; }

    /// <summary>Native (driver) or generic (SKB) XDP.</summary>
    public XdpAttachMode XdpMode => Program.Mode;

    /// <summary>The memory queue <paramref name="queue"/> runs on now, with its UMEM (null while stopped).</summary>
    public new XdpQueueMemory? QueueMemory(int queue) => (XdpQueueMemory?)base.QueueMemory(queue);

    /// <summary>Copy or zero-copy, for queue <paramref name="queue"/>'s socket now (null while stopped).</summary>
    public XskMode? QueueMode(int queue) => Queues[queue].Mode;

    /// <summary>The kernel's AF_XDP counters of queue <paramref name="queue"/>, over every socket it had.</summary>
    public XskStatistics ReadXskStatistics(int queue) => Queues[queue].ReadStatistics();

    /// <summary>Delivered plus dropped, over all queues: every frame taken off an rx ring.</summary>
    public long PacketsSeen => Queues.Sum(q => q.Counters.Packets + q.Counters.Drops);

    /// <summary>The interface's kernel counters (rtnetlink, in its namespace).</summary>
    public LinkStats64 ReadKernelCounters()
    {
        string name = InterfaceName;
        return InNamespace(() =>
        {
            using RtNetlink rtnl = RtNetlink.Open();
            return rtnl.GetLink(name).Stats;
        });
    }

    /// <summary>
    /// Allocates queue <paramref name="queueIndex"/>'s pools and picks its UMEM: the region bound
    /// to the queue now, or the driver's own readable chunks.
    /// </summary>
    public override object MemAlloc(NetDevice device, int queueIndex) => XdpQueueMemory.Allocate(device, queueIndex, _queueMemory, Options.UnboundChunks);

    /// <summary>Closes every socket, stops the queues, frees their memory, unregisters the device and detaches the program.</summary>
    protected override void Dispose(bool disposing)
    {
        bool first = !IsDisposed;
        base.Dispose(disposing);
        if (disposing && first)
        {
            Program.Dispose();
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"XdpNic {InterfaceName}(ifindex {IfIndex}, {XdpMode} XDP)";

    /// <summary>The transmit queue, for a queue stopping with packets in flight; null while the constructor runs.</summary>
    internal XdpNicTxQueue? TxQueue => _tx;

    /// <summary>The tx port of the lowest running queue whose UMEM is <paramref name="region"/>, or null.</summary>
    internal XdpTxPort? FindTxPort(DmabufRegion region)
    {
        IReadOnlyList<XdpNicQueue> queues = Queues;
        for (int i = 0; i < queues.Count; i++)
        {
            if (queues[i].TxPort is { } p && ReferenceEquals(p.Region, region))
            {
                return p;
            }
        }

        return null;
    }

    /// <summary>Holds queue <paramref name="queue"/>'s poll loop: frames stay in its rx ring (see <see cref="XdpNicQueue.HoldPolling"/>).</summary>
    internal void HoldPolling(int queue) => Queues[queue].HoldPolling();

    /// <summary>Lets queue <paramref name="queue"/>'s held poll loop take frames again.</summary>
    internal void ResumePolling(int queue) => Queues[queue].ResumePolling();

    /// <summary>Times queue <paramref name="queue"/>'s loop blocked in <c>poll(2)</c> for frames (its wakeups).</summary>
    internal long QueuePollWaits(int queue) => Queues[queue].PollWaits;

    /// <summary>Frames waiting in queue <paramref name="queue"/>'s rx ring.</summary>
    internal uint QueueRxQueued(int queue) => Queues[queue].RxQueued;

    /// <summary>Chunks posted in queue <paramref name="queue"/>'s fill ring.</summary>
    internal uint QueueFillPosted(int queue) => Queues[queue].FillPosted;

    /// <summary>UMEM chunks queue <paramref name="queue"/> holds for transmit now.</summary>
    internal int QueueTxChunksHeld(int queue) => Queues[queue].TxChunksHeld;

    /// <summary>Queue <paramref name="queue"/>'s tx port, or null.</summary>
    internal XdpTxPort? TxPortOf(int queue) => Queues[queue].TxPort;

    /// <summary>Runs <paramref name="f"/> in the interface's namespace (on a dedicated thread), or here.</summary>
    internal T InNamespace<T>(Func<T> f) => Namespace is null ? f() : Namespace.Run(f);
}
