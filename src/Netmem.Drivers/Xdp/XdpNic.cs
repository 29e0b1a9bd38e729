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
/// a region through <see cref="Device"/>: the queue restarts onto the region.</para>
/// <para>The program is the kernel's, not the model's: <see cref="NetDevice.XdpProgramCount"/>
/// stays 0, and attaching a model XDP program is refused while a queue is bound, as for any
/// driver. Needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF) and kernel 5.9 or later (BPF links
/// for XDP).</para>
/// </remarks>
public sealed class XdpNic : IQueueManagementOps, IDisposable
{
    private readonly XdpNicQueue[] _queues = [];
    private bool _disposed;

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

        (IfIndex, Mtu) = InNamespace(() =>
        {
            using RtNetlink rtnl = RtNetlink.Open();
            LinkInfo link = rtnl.GetLink(interfaceName);
            if (link.RxQueues > 0 && Options.Queues > link.RxQueues)
            {
                throw new NativeException("XdpNic", Errno.EINVAL, $"interface '{interfaceName}' has {link.RxQueues} rx queues; {Options.Queues} asked.");
            }

            return (link.IfIndex, link.Mtu);
        });
        InterfaceName = interfaceName;
        Program = InNamespace(() => XdpProgram.Attach(IfIndex, Options.Queues, Options.GenericXdp));
        try
        {
            Dma = new DmaDevice(interfaceName + "-xdp");
            Device = new NetDevice(interfaceName, Options.Queues, this)
            {
                TcpDataSplit = TcpDataSplit.Enabled,
                DmaDevice = Dma,
            };
            _queues = new XdpNicQueue[Options.Queues];
            Device.Register();
            for (int i = 0; i < _queues.Length; i++)
            {
                int? cpu = Options.PinCpus is { Count: > 0 } pins ? pins[i % pins.Count] : null;
                _queues[i] = new XdpNicQueue(this, i, cpu);
                _queues[i].Start((XdpQueueMemory)MemAlloc(Device, i));
            }

            Device.Up();
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

    /// <summary>The options the driver runs with.</summary>
    public XdpNicOptions Options { get; }

    /// <summary>The device the core sees: bind providers through it.</summary>
    public NetDevice Device { get; } = null!;

    /// <summary>The device's IOVA space.</summary>
    public DmaDevice Dma { get; } = null!;

    /// <summary>Flow steering table.</summary>
    public FlowSteering Flows { get; } = new();

    /// <summary>The XDP program and map the driver attached.</summary>
    public XdpProgram Program { get; }

    /// <summary>Native (driver) or generic (SKB) XDP.</summary>
    public XdpAttachMode XdpMode => Program.Mode;

    /// <summary>Opens a socket for a flow on this device.</summary>
    public DevmemSocket OpenSocket(FlowKey flow, int maxOutstanding = 4096) => Flows.Open(flow, maxOutstanding);

    /// <summary>Counters of queue <paramref name="queue"/>.</summary>
    public RxCounters QueueCounters(int queue) => _queues[queue].Counters;

    /// <summary>The memory queue <paramref name="queue"/> runs on now (null while stopped).</summary>
    public XdpQueueMemory? QueueMemory(int queue) => _queues[queue].XdpMemory;

    /// <summary>Copy or zero-copy, for queue <paramref name="queue"/>'s socket now (null while stopped).</summary>
    public XskMode? QueueMode(int queue) => _queues[queue].Mode;

    /// <summary>The kernel's AF_XDP counters of queue <paramref name="queue"/>, over every socket it had.</summary>
    public XskStatistics ReadXskStatistics(int queue) => _queues[queue].ReadStatistics();

    /// <summary>Frames whose delivery threw on queue <paramref name="queue"/> (counted as NoMemory drops as well).</summary>
    public long PollErrors(int queue) => _queues[queue].PollErrors;

    /// <summary>Delivered plus dropped, over all queues: every frame taken off an rx ring.</summary>
    public long PacketsSeen => _queues.Sum(q => q.Counters.Packets + q.Counters.Drops);

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

    /// <inheritdoc/>
    public object MemAlloc(NetDevice device, int queueIndex) => XdpQueueMemory.Allocate(device, queueIndex, Options, Mtu + 14);

    /// <inheritdoc/>
    public void MemFree(NetDevice device, object queueMemory) => ((XdpQueueMemory)queueMemory).Free();

    /// <inheritdoc/>
    public void Start(NetDevice device, object queueMemory, int queueIndex) => _queues[queueIndex].Start((XdpQueueMemory)queueMemory);

    /// <inheritdoc/>
    public object Stop(NetDevice device, int queueIndex) => _queues[queueIndex].StopQueue();

    /// <summary>Closes every socket, stops the queues, frees their memory, unregisters and detaches the program.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        Flows.CloseAll();
        foreach (XdpNicQueue? q in _queues)
        {
            q?.ShutdownQueue();
        }

        Device?.Unregister();
        Program?.Dispose();
    }

    /// <inheritdoc/>
    public override string ToString() => $"XdpNic {InterfaceName}(ifindex {IfIndex}, {XdpMode} XDP)";

    /// <summary>Runs <paramref name="f"/> in the interface's namespace (on a dedicated thread), or here.</summary>
    internal T InNamespace<T>(Func<T> f) => Namespace is null ? f() : Namespace.Run(f);
}
