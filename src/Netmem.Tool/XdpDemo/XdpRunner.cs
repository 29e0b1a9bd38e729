using System.Diagnostics;
using System.Globalization;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Drivers.Xdp;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tool.Demo;

namespace Netmem.Tool.XdpDemo;

/// <summary>
/// <c>netmem xdp</c>: the devmem receive path through AF_XDP. Creates two private network
/// namespaces joined by a veth pair, attaches an <see cref="XdpNic"/> to the device end with its
/// queue bound to a memfd region (the region is the UMEM), sends <see cref="XdpRunOptions.Count"/>
/// UDP datagrams through the kernel from the peer namespace (paced in bursts), reads and verifies
/// every payload byte through the region, returns every token, tears everything down and checks
/// that nothing leaked and that the driver's counts agree with the kernel's veth and XSK counters.
/// </summary>
/// <remarks>
/// Traffic never leaves the two namespaces (addresses in 198.18.0.0/15, see <see cref="VethPair"/>).
/// Needs root (CAP_NET_ADMIN, CAP_NET_RAW, CAP_BPF, CAP_SYS_ADMIN) and kernel 5.9 or later.
/// Everything it creates is removed on return, on failure and on cancellation alike.
/// </remarks>
public static class XdpRunner
{
    private const ushort Port = 9300;

    /// <summary>The prefix of the namespaces a run creates (and removes).</summary>
    public const string NamespacePrefix = "netmem-xdprun";

    /// <summary>Runs the scenario. <paramref name="stop"/> ends sending early (the checks then use what was sent).</summary>
    /// <exception cref="PlatformNotSupportedException">Namespaces are unavailable here; the message says why.</exception>
    public static XdpRunResult Run(XdpRunOptions o, TextWriter progress, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(progress);
        Validate(o);
        if (!NetNamespace.IsSupported)
        {
            throw new PlatformNotSupportedException("netmem xdp: " + NetNamespace.UnsupportedReason);
        }

        List<string> failures = [];
        using VethPair veth = VethPair.Create(NamespacePrefix, mtu: o.Mtu);
        using var region = DmabufRegion.CreateMemfd("netmem-xdp", o.RegionBytes);
        var nic = new XdpNic(veth.DeviceNamespace, veth.Name, new XdpNicOptions { CopyOnly = o.CopyOnly, GenericXdp = o.GenericXdp });
        DmabufBindingHandle? handle = null;
        FlowConsumer? consumer = null;
        NamespaceUdpSender? sender = null;
        List<PagePool> pools = [];
        try
        {
            handle = nic.Device.BindDmabuf(region, [0]);
            pools.AddRange(nic.Device.PagePools);
            DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port));
            consumer = new FlowConsumer(socket, o.Payload, corruptOnce: false);
            sender = veth.OpenSender(Port, maxDatagrams: o.Count);
            RxCounters counters = nic.QueueCounters(0);

            LinkStats64 peerBefore = veth.ReadPeerCounters();
            LinkStats64 devBefore = veth.ReadDeviceCounters();
            XskStatistics xskBefore = nic.ReadXskStatistics(0);
            long seenBefore = nic.PacketsSeen;
            long deliveredBefore = counters.Packets;
            long bytesBefore = counters.Bytes;
            Dictionary<DropReason, long> dropsBefore = new(counters.DropsByReason());

            GcCollections gcStart = GcCollections.Now();
            var clock = Stopwatch.StartNew();
            long sent = Send(o, nic, sender, consumer, xskBefore, seenBefore, progress, clock, failures, stop);
            double seconds = clock.Elapsed.TotalSeconds;

            RunChecks.WaitQuiet(() => nic.PacketsSeen);
            long delivered = counters.Packets - deliveredBefore;
            RunChecks.WaitReceived([consumer], delivered, TimeSpan.FromSeconds(10));
            consumer.Stop();

            GcCollections gc = GcCollections.Since(gcStart);
            LinkStats64 peer = veth.ReadPeerCounters();
            LinkStats64 dev = veth.ReadDeviceCounters();
            XskStatistics xsk = nic.ReadXskStatistics(0);
            ulong peerTx = peer.TxPackets - peerBefore.TxPackets;
            ulong peerTxDropped = peer.TxDropped - peerBefore.TxDropped;
            ulong devRx = dev.RxPackets - devBefore.RxPackets;
            ulong xskDropped = xsk.RxDropped - xskBefore.RxDropped;
            ulong xskRingFull = xsk.RxRingFull - xskBefore.RxRingFull;
            ulong xskFillEmpty = xsk.RxFillRingEmptyDescs - xskBefore.RxFillRingEmptyDescs;
            long payloadBytes = counters.Bytes - bytesBefore;
            Dictionary<string, long> drops = [];
            foreach ((DropReason reason, long count) in counters.DropsByReason())
            {
                long d = count - dropsBefore.GetValueOrDefault(reason);
                if (d != 0)
                {
                    drops[reason.ToString()] = d;
                }
            }

            long dropped = drops.Values.Sum();
            long received = consumer.Received;
            long verified = consumer.Verified;
            long mismatches = consumer.Mismatches;
            int tokensHeld = socket.TokensOutstanding;
            PagePoolStats stats = RunChecks.Total(pools);
            string xskMode = nic.QueueMode(0) == Native.XskMode.ZeroCopy ? "zero-copy" : "copy";
            string xdpMode = nic.XdpMode == XdpAttachMode.Driver ? "driver" : "generic";
            string ifName = nic.InterfaceName;

            int bindingId = handle.BindingId;
            DmabufBinding binding = handle.Binding;
            handle.Dispose();
            handle = null;
            nic.Dispose();
            long inflight = RunChecks.WaitPoolsFreed(pools, TimeSpan.FromSeconds(5));
            long outstanding = binding.Size - binding.Avail;

            RunChecks.CheckCommon(failures, mismatches, delivered, received, inflight, outstanding, binding.IsFreed);
            if (verified != sent)
            {
                failures.Add($"{sent} datagrams sent but {verified} verified");
            }

            if (peerTx != (ulong)(delivered + dropped) + xskDropped + xskRingFull)
            {
                failures.Add($"peer tx_packets {peerTx} != delivered {delivered} + dropped {dropped} + xsk rx_dropped {xskDropped} + rx_ring_full {xskRingFull}");
            }

            if (tokensHeld != 0)
            {
                failures.Add($"{tokensHeld} tokens still held by the socket after the consumer stopped");
            }

            return new XdpRunResult
            {
                Seconds = seconds,
                Payload = o.Payload,
                Queues = 1,
                Flows = 1,
                PacketsInjected = sent,
                PacketsDelivered = delivered,
                PacketsReceived = received,
                PacketsVerified = verified,
                PayloadMismatches = mismatches,
                PacketsPerSecond = delivered / seconds,
                GbitPerSecond = payloadBytes * 8 / seconds / 1e9,
                DropsByReason = drops,
                PacketsDropped = dropped,
                PoolCounters = stats,
                Collections = gc,
                InflightAfterTeardown = inflight,
                GenPoolOutstandingAfterTeardown = outstanding,
                BindingId = bindingId,
                Interface = ifName,
                XskMode = xskMode,
                XdpMode = xdpMode,
                KernelPeerTxPackets = peerTx,
                KernelPeerTxDropped = peerTxDropped,
                KernelDeviceRxPackets = devRx,
                XskRxDropped = xskDropped,
                XskRxRingFull = xskRingFull,
                XskFillRingEmptyDescs = xskFillEmpty,
                Failures = failures,
            };
        }
        finally
        {
            // On the success path these are no-ops; on failure or cancellation they leave nothing behind.
            consumer?.Stop();
            handle?.Dispose();
            nic.Dispose();
            sender?.Dispose();
        }
    }

    /// <summary>Writes the human-readable summary.</summary>
    public static void PrintSummary(XdpRunResult r, TextWriter w)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(w);
        CultureInfo c = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(c, $"netmem xdp: {r.Interface} (veth), AF_XDP {r.XskMode} mode, {r.XdpMode} XDP, queue 0 bound to dmabuf binding {r.BindingId} as its UMEM, {r.Payload} B payload, {r.Seconds:F2} s"));
        w.WriteLine(string.Create(c, $"  rate        {r.PacketsPerSecond / 1e6:F3} Mpps   {r.GbitPerSecond:F2} Gbit/s payload (kernel sender and driver share the machine)"));
        w.WriteLine(string.Create(c, $"  packets     sent {r.PacketsInjected}  delivered {r.PacketsDelivered}  received {r.PacketsReceived}  verified {r.PacketsVerified}  mismatches {r.PayloadMismatches}"));
        RunChecks.PrintDrops(r, w);
        w.WriteLine(string.Create(c, $"  kernel      peer tx_packets {r.KernelPeerTxPackets} (driver took {r.PacketsDelivered + r.PacketsDropped})  peer tx_dropped {r.KernelPeerTxDropped}  device rx_packets {r.KernelDeviceRxPackets}"));
        w.WriteLine(string.Create(c, $"  xsk         rx_dropped {r.XskRxDropped}  rx_ring_full {r.XskRxRingFull}  rx_fill_ring_empty_descs {r.XskFillRingEmptyDescs}"));
        RunChecks.PrintPoolsAndResult(r, w);
    }

    private static void Validate(XdpRunOptions o)
    {
        if (o.Mtu < 1280 || o.Mtu > 3000)
        {
            throw new ArgumentException("--mtu must be 1280..3000 (a frame must fit a 4 KiB UMEM chunk after 256 bytes of kernel headroom).");
        }

        if (o.Payload < 1 || o.Payload > o.Mtu - 28)
        {
            throw new ArgumentException($"--payload must be 1..{o.Mtu - 28} bytes (the MTU less IPv4 and UDP headers).");
        }

        if (o.Count < 1 || o.Count > 10_000_000)
        {
            throw new ArgumentException("--count must be 1..10000000.");
        }

        if (o.Burst < 1 || o.Burst > 1024)
        {
            throw new ArgumentException("--burst must be 1..1024 (half the fill ring).");
        }

        if (o.RegionBytes < (16L << 20) || o.RegionBytes % DmabufRegion.Granule != 0)
        {
            throw new ArgumentException("--region must be at least 16 MiB and a multiple of 4 KiB.");
        }
    }

    /// <summary>
    /// Sends in bursts; after each burst waits until the driver has taken it off the rx ring (or
    /// the kernel has counted it lost) and the consumer is not far behind. Returns the datagrams sent.
    /// </summary>
    private static long Send(XdpRunOptions o, XdpNic nic, NamespaceUdpSender sender, FlowConsumer consumer, XskStatistics xskBefore, long seenBefore,
        TextWriter progress, Stopwatch clock, List<string> failures, CancellationToken stop)
    {
        byte[] payload = new byte[o.Payload];
        ulong seq = 0;
        long sent = 0;
        TimeSpan nextPrint = TimeSpan.FromSeconds(1);
        while (sent < o.Count && !stop.IsCancellationRequested)
        {
            int burst = (int)Math.Min(o.Burst, o.Count - sent);
            for (int i = 0; i < burst; i++)
            {
                FrameBuilder.FillSequencePayload(payload, seq++);
                sender.Send(payload);
            }

            sent += burst;
            if (!RunChecks.WaitUntil(() => nic.PacketsSeen - seenBefore + Lost(nic, xskBefore) >= sent && consumer.Received >= sent - 1024 - Lost(nic, xskBefore), TimeSpan.FromSeconds(5)))
            {
                XskStatistics x = nic.ReadXskStatistics(0);
                failures.Add($"stalled: the driver took {nic.PacketsSeen - seenBefore} and the consumer received {consumer.Received} of {sent} sent (xsk lost {x.RxLost - xskBefore.RxLost})");
                break;
            }

            if (o.Progress && clock.Elapsed >= nextPrint)
            {
                progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{clock.Elapsed.TotalSeconds,6:F1}s] sent {sent}  delivered {nic.QueueCounters(0).Packets}  received {consumer.Received}  mismatches {consumer.Mismatches}"));
                nextPrint += TimeSpan.FromSeconds(1);
            }
        }

        return sent;
    }

    /// <summary>Frames the kernel's XSK counters say it lost since <paramref name="before"/>.</summary>
    private static long Lost(XdpNic nic, XskStatistics before) => (long)(nic.ReadXskStatistics(0).RxLost - before.RxLost);

}
