using System.Globalization;
using System.Net;
using Netmem.Native;

namespace Netmem.Drivers.Tun;

/// <summary>
/// A TUN interface created inside a <see cref="NetNamespace"/>, with one non-blocking file
/// descriptor per queue. This is the plumbing under a TUN driver: it owns the descriptors and the
/// interface's configuration, and leaves queues, page pools and memory placement to the driver.
/// </summary>
/// <remarks>
/// <para>
/// The descriptors are opened on a thread that joined the namespace, so the interface lives
/// there; afterwards they work from any thread. Reading a descriptor returns one IP packet that
/// the namespace's kernel transmitted on the interface (see <see cref="TunFile"/>).
/// </para>
/// <para>
/// The interface is not persistent: <see cref="Dispose"/> closes the descriptors and the kernel
/// removes it. Dispose the device before its namespace.
/// </para>
/// </remarks>
public sealed class TunDevice : IDisposable
{
    /// <summary>The device's default IPv4 address (198.18.0.0/15, the benchmarking range).</summary>
    public static readonly IPAddress LocalIPv4 = IPAddress.Parse("198.18.0.1");

    /// <summary>An address routed into the TUN by the default configuration: what is sent here is read from the device.</summary>
    public static readonly IPAddress PeerIPv4 = IPAddress.Parse("198.18.0.2");

    /// <summary>The device's default IPv6 address (unique-local).</summary>
    public static readonly IPAddress LocalIPv6 = IPAddress.Parse("fd00:6e6d::1");

    /// <summary>An IPv6 address routed into the TUN by the default configuration.</summary>
    public static readonly IPAddress PeerIPv6 = IPAddress.Parse("fd00:6e6d::2");

    /// <summary>One descriptor per queue; entries become -1 after Dispose.</summary>
    private readonly int[] _fds;

    private TunDevice(NetNamespace ns, string name, int ifIndex, int[] fds, bool multiQueue)
    {
        Namespace = ns;
        Name = name;
        IfIndex = ifIndex;
        _fds = fds;
        IsMultiQueue = multiQueue;
    }

    /// <summary>The namespace the interface lives in.</summary>
    public NetNamespace Namespace { get; }

    /// <summary>The interface name the kernel assigned.</summary>
    public string Name { get; }

    /// <summary>The interface index inside <see cref="Namespace"/>.</summary>
    public int IfIndex { get; }

    /// <summary>Whether the interface was created with IFF_MULTI_QUEUE.</summary>
    public bool IsMultiQueue { get; }

    /// <summary>The queue descriptors, queue 0 first. Valid until <see cref="Dispose"/>.</summary>
    public IReadOnlyList<int> Fds
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            return _fds;
        }
    }

    /// <summary>The number of queues.</summary>
    public int QueueCount => _fds.Length;

    private bool IsDisposed => _fds[0] < 0;

    /// <summary>
    /// Creates a TUN interface (IFF_TUN | IFF_NO_PI, non-blocking descriptors) inside
    /// <paramref name="ns"/>. More than one queue, or <paramref name="multiQueue"/>, makes it
    /// IFF_MULTI_QUEUE. The interface starts down and unaddressed: call <see cref="Configure"/>.
    /// </summary>
    /// <param name="ns">The namespace to create the interface in.</param>
    /// <param name="name">The name; <c>%d</c> lets the kernel number it.</param>
    /// <param name="queueCount">Descriptors to open, 1..256.</param>
    /// <param name="multiQueue">Use IFF_MULTI_QUEUE even with one queue.</param>
    /// <exception cref="NativeException">The kernel refused; the message says why (permission, missing device, name in use).</exception>
    public static TunDevice Create(NetNamespace ns, string name = "nmtun%d", int queueCount = 1, bool multiQueue = false)
    {
        ArgumentNullException.ThrowIfNull(ns);
        bool mq = multiQueue || queueCount > 1;
        (int[] fds, string actual, int ifIndex) = ns.Run(() =>
        {
            int[] fds = TunFile.OpenQueues(name, queueCount, mq, nonBlocking: true, out string actual);
            return (fds, actual, Sys.IfNameToIndex(actual));
        });
        return new TunDevice(ns, actual, ifIndex, fds, mq);
    }

    /// <summary>
    /// Brings the link up with <paramref name="configuration"/>'s MTU and txqueuelen and adds its
    /// addresses (IPv6 without duplicate address detection, so the address is usable at once), through rtnetlink inside the namespace.
    /// </summary>
    /// <remarks>
    /// With an IPv6 link-local address (the default), the kernel itself transmits into the TUN
    /// after the link comes up: ICMPv6 router solicitations (type 133) from fe80::... to ff02::2,
    /// the first within milliseconds, then after 4 s with exponential backoff up to an hour,
    /// without end (router_solicitations = -1 in a fresh namespace). A reader must expect them
    /// (the parser drops them as UnsupportedProtocol, protocol 58); they count in tx_packets like
    /// any packet read. A TUN is IFF_NOARP, so the kernel joins no solicited-node groups on it
    /// and sends no MLD reports and no neighbour solicitations. Setting
    /// <see cref="TunConfiguration.IPv6LinkLocal"/> to false leaves the device silent.
    /// </remarks>
    public void Configure(TunConfiguration? configuration = null)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        TunConfiguration c = configuration ?? new TunConfiguration();
        c.Validate();
        using RtNetlink rtnl = Namespace.OpenRtNetlink();
        rtnl.SetLink(Name, mtu: c.Mtu, txQueueLength: c.TxQueueLength, ipv6LinkLocal: c.IPv6LinkLocal ? null : false);
        if (c.IPv4Address is not null)
        {
            rtnl.AddAddress(Name, c.IPv4Address, c.IPv4PrefixLength);
        }

        if (c.IPv6Address is not null)
        {
            rtnl.AddAddress(Name, c.IPv6Address, c.IPv6PrefixLength);
        }

        rtnl.SetLink(Name, up: true);
    }

    /// <summary>The descriptor of queue <paramref name="queue"/>.</summary>
    public int GetFd(int queue)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return _fds[queue];
    }

    /// <summary>Reads one packet from <paramref name="queue"/>; -1 when it is empty. See <see cref="TunFile.Read(int, Span{byte})"/>.</summary>
    public int Read(int queue, Span<byte> buffer) => TunFile.Read(GetFd(queue), buffer);

    /// <summary>Injects one IP packet as received by the interface (for tests). -1 when the write would block.</summary>
    public int Write(int queue, ReadOnlySpan<byte> packet) => TunFile.Write(GetFd(queue), packet);

    /// <summary>Waits up to <paramref name="timeoutMs"/> for any queue to be readable; returns its index or -1.</summary>
    public int WaitAnyReadable(int timeoutMs)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        return TunFile.WaitAnyReadable(_fds, timeoutMs);
    }

    /// <summary>
    /// Reads the interface's kernel counters from <c>/proc/thread-self/net/dev</c> on a thread in
    /// the namespace (sysfs would show the host's namespace). Costs a thread start, no process.
    /// </summary>
    public TunCounters ReadCounters()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        string name = Name;
        string text = Namespace.Run(() => File.ReadAllText("/proc/thread-self/net/dev"));
        return ParseProcNetDev(text, name)
            ?? throw new InvalidOperationException($"Interface '{name}' is not listed in /proc/net/dev of namespace '{Namespace.Name}'.");
    }

    /// <summary>
    /// Reads the same counters through rtnetlink (<c>IFLA_STATS64</c>, the 64-bit counters): a
    /// cross-check for <see cref="ReadCounters"/>.
    /// </summary>
    public TunCounters ReadCountersFromNetlink()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        using RtNetlink rtnl = Namespace.OpenRtNetlink();
        LinkStats64 s = rtnl.GetLink(Name).Stats;
        return new TunCounters(s.RxBytes, s.RxPackets, s.RxErrors, s.RxDropped, s.TxBytes, s.TxPackets, s.TxErrors, s.TxDropped);
    }

    /// <summary>Closes every queue descriptor; the kernel then removes the interface.</summary>
    public void Dispose()
    {
        for (int i = 0; i < _fds.Length; i++)
        {
            int fd = Interlocked.Exchange(ref _fds[i], -1);
            if (fd >= 0)
            {
                TunFile.Close(fd);
            }
        }
    }

    /// <summary>
    /// Finds <paramref name="name"/>'s line in <c>/proc/net/dev</c> text: after "name:", eight
    /// receive columns (bytes packets errs drop fifo frame compressed multicast) then eight
    /// transmit columns (bytes packets errs drop fifo colls carrier compressed).
    /// </summary>
    internal static TunCounters? ParseProcNetDev(string text, string name)
    {
        foreach (string line in text.Split('\n'))
        {
            int colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0 || !line.AsSpan(0, colon).Trim().SequenceEqual(name))
            {
                continue;
            }

            string[] f = line[(colon + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 16)
            {
                return null;
            }

            ulong At(int i) => ulong.Parse(f[i], CultureInfo.InvariantCulture);
            return new TunCounters(At(0), At(1), At(2), At(3), At(8), At(9), At(10), At(11));
        }

        return null;
    }
}
