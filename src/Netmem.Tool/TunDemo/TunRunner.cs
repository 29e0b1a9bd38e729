using System.Diagnostics;
using System.Globalization;
using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tool.Demo;

namespace Netmem.Tool.TunDemo;

/// <summary>
/// <c>netmem tun</c>: the devmem receive path on real kernel packets. Creates a private network
/// namespace with a <see cref="TunNic"/>, binds a memfd region to its queues, opens one socket per
/// flow, sends <see cref="TunRunOptions.Count"/> UDP datagrams through the namespace's kernel
/// stack into the TUN (paced in bursts), reads and verifies every payload byte through the region,
/// returns every token, tears everything down and checks that nothing leaked and that the
/// driver's counts agree with the kernel's own TUN counters.
/// </summary>
/// <remarks>
/// Traffic never leaves the namespace: the senders target <see cref="TunDevice.PeerIPv4"/>, which
/// the namespace routes into its own TUN (enforced by <see cref="TunAddressPolicy"/>). Needs root
/// (CAP_NET_ADMIN and CAP_SYS_ADMIN).
/// </remarks>
public static class TunRunner
{
    private const ushort BasePort = 9100;

    /// <summary>Runs the scenario. <paramref name="stop"/> ends sending early (the checks then use what was sent).</summary>
    /// <exception cref="PlatformNotSupportedException">Namespaces or TUN are unavailable here; the message says why.</exception>
    public static TunRunResult Run(TunRunOptions o, TextWriter progress, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(progress);
        Validate(o);
        if (!NetNamespace.IsSupported)
        {
            throw new PlatformNotSupportedException("netmem tun: " + NetNamespace.UnsupportedReason);
        }

        List<string> failures = [];
        using var ns = NetNamespace.Create("netmem-tun");
        using var region = DmabufRegion.CreateMemfd("netmem-tun", o.RegionBytes);
        var nic = new TunNic(ns, new TunNicOptions { Queues = o.Queues, Mtu = o.Mtu });
        DmabufBindingHandle? handle = null;
        FlowConsumer[] consumers = [];
        var senders = new List<NamespaceUdpSender>();
        var sockets = new List<DevmemSocket>();
        List<PagePool> pools = [];
        string ifName = nic.Tun.Name;
        try
        {
            handle = nic.Device.BindDmabuf(region, Enumerable.Range(0, o.Queues).ToArray());
            pools.AddRange(nic.Device.PagePools);
            int flows = o.Queues;
            consumers = new FlowConsumer[flows];
            int perFlow = (o.Count + flows - 1) / flows;
            for (int f = 0; f < flows; f++)
            {
                var port = (ushort)(BasePort + f);
                DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(port));
                sockets.Add(socket);
                consumers[f] = new FlowConsumer(socket, o.Payload, corruptOnce: false);
                senders.Add(new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv4, port), perFlow));
            }

            // The kernel's first router solicitation follows link-up; let it pass, then take both
            // baselines so kernel and driver counts cover the same packets.
            Thread.Sleep(50);
            RunChecks.WaitQuiet(() => nic.PacketsSeen);
            TunCounters kernelBefore = nic.ReadKernelCounters();
            long seenBefore = nic.PacketsSeen;
            long deliveredBefore = SumQueues(nic, o.Queues, c => c.Packets);
            long bytesBefore = SumQueues(nic, o.Queues, c => c.Bytes);
            Dictionary<DropReason, long> dropsBefore = RxCounters.SumDropsByReason(Enumerable.Range(0, o.Queues).Select(nic.QueueCounters));

            GcCollections gcStart = GcCollections.Now();
            var clock = Stopwatch.StartNew();
            long sent = Send(o, nic, senders, consumers, seenBefore, progress, clock, failures, stop);
            double seconds = clock.Elapsed.TotalSeconds;

            RunChecks.WaitQuiet(() => nic.PacketsSeen);
            long delivered = SumQueues(nic, o.Queues, c => c.Packets) - deliveredBefore;
            RunChecks.WaitReceived(consumers, delivered, TimeSpan.FromSeconds(10));
            foreach (FlowConsumer c in consumers)
            {
                c.Stop();
            }

            GcCollections gc = GcCollections.Since(gcStart);
            TunCounters kernel = nic.ReadKernelCounters().Since(kernelBefore);
            long payloadBytes = SumQueues(nic, o.Queues, c => c.Bytes) - bytesBefore;
            Dictionary<string, long> drops = [];
            foreach ((DropReason reason, long count) in RxCounters.SumDropsByReason(Enumerable.Range(0, o.Queues).Select(nic.QueueCounters)))
            {
                long d = count - dropsBefore.GetValueOrDefault(reason);
                if (d != 0)
                {
                    drops[reason.ToString()] = d;
                }
            }

            long dropped = drops.Values.Sum();
            long received = consumers.Sum(c => c.Received);
            long verified = consumers.Sum(c => c.Verified);
            long mismatches = consumers.Sum(c => c.Mismatches);
            int tokensHeld = sockets.Sum(s => s.TokensOutstanding);
            PagePoolStats stats = RunChecks.Total(pools);

            // Teardown: unbind (queues restart on system pages), close sockets and the device;
            // every pool must then be freed and the binding's GenPool whole.
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

            if (kernel.TxPackets != (ulong)(delivered + dropped))
            {
                failures.Add($"kernel tx_packets {kernel.TxPackets} != delivered {delivered} + dropped {dropped}");
            }

            if (kernel.TxDropped != 0)
            {
                failures.Add($"kernel dropped {kernel.TxDropped} packets at the TUN ring (tx_dropped): pacing failed");
            }

            if (tokensHeld != 0)
            {
                failures.Add($"{tokensHeld} tokens still held by sockets after the consumers stopped");
            }

            return new TunRunResult
            {
                Seconds = seconds,
                Payload = o.Payload,
                Queues = o.Queues,
                Flows = consumers.Length,
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
                KernelTxPackets = kernel.TxPackets,
                KernelTxBytes = kernel.TxBytes,
                KernelTxDropped = kernel.TxDropped,
                Failures = failures,
            };
        }
        finally
        {
            // On the success path these are no-ops; on failure they keep the namespace removable.
            foreach (FlowConsumer c in consumers)
            {
                c?.Stop();
            }

            handle?.Dispose();
            nic.Dispose();
            foreach (NamespaceUdpSender s in senders)
            {
                s.Dispose();
            }
        }
    }

    /// <summary>Writes the human-readable summary.</summary>
    public static void PrintSummary(TunRunResult r, TextWriter w)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(w);
        CultureInfo c = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(c, $"netmem tun: {r.Interface}, {r.Queues} queue(s) bound to dmabuf binding {r.BindingId}, {r.Flows} flow(s), {r.Payload} B payload, {r.Seconds:F2} s"));
        w.WriteLine(string.Create(c, $"  rate        {r.PacketsPerSecond / 1e6:F3} Mpps   {r.GbitPerSecond:F2} Gbit/s payload (kernel sender and driver share the machine)"));
        w.WriteLine(string.Create(c, $"  packets     sent {r.PacketsInjected}  delivered {r.PacketsDelivered}  received {r.PacketsReceived}  verified {r.PacketsVerified}  mismatches {r.PayloadMismatches}"));
        RunChecks.PrintDrops(r, w);
        w.WriteLine(string.Create(c, $"  kernel      tx_packets {r.KernelTxPackets} (driver read {r.PacketsDelivered + r.PacketsDropped})  tx_bytes {r.KernelTxBytes}  tx_dropped {r.KernelTxDropped}"));
        RunChecks.PrintPoolsAndResult(r, w);
    }

    private static void Validate(TunRunOptions o)
    {
        if (o.Queues < 1 || o.Queues > 16)
        {
            throw new ArgumentException("--queues must be 1..16.");
        }

        if (o.Mtu < 1280 || o.Mtu > 9000)
        {
            throw new ArgumentException("--mtu must be 1280..9000.");
        }

        if (o.Payload < 1 || o.Payload > o.Mtu - 28)
        {
            throw new ArgumentException($"--payload must be 1..{o.Mtu - 28} bytes (the MTU less IPv4 and UDP headers).");
        }

        if (o.Count < 1 || o.Count > 10_000_000)
        {
            throw new ArgumentException("--count must be 1..10000000.");
        }

        if (o.Burst < 1 || o.Burst > 500)
        {
            throw new ArgumentException("--burst must be 1..500 (the TUN ring holds 1000 packets).");
        }

        if (o.RegionBytes < (4L << 20) || o.RegionBytes % DmabufRegion.Granule != 0)
        {
            throw new ArgumentException("--region must be at least 4 MiB and a multiple of 4 KiB.");
        }
    }

    /// <summary>
    /// Sends round-robin over the flows in bursts; after each burst waits until the driver has
    /// read it (the TUN ring must not overflow) and the consumers are not far behind (the sockets
    /// must not push back). Returns the datagrams sent.
    /// </summary>
    private static long Send(TunRunOptions o, TunNic nic, List<NamespaceUdpSender> senders, FlowConsumer[] consumers, long seenBefore,
        TextWriter progress, Stopwatch clock, List<string> failures, CancellationToken stop)
    {
        byte[] payload = new byte[o.Payload];
        var seqs = new ulong[senders.Count];
        long sent = 0;
        TimeSpan nextPrint = TimeSpan.FromSeconds(1);
        while (sent < o.Count && !stop.IsCancellationRequested)
        {
            int burst = (int)Math.Min(o.Burst, o.Count - sent);
            for (int i = 0; i < burst; i++)
            {
                int f = (int)((sent + i) % senders.Count);
                FrameBuilder.FillSequencePayload(payload, seqs[f]++);
                senders[f].Send(payload);
            }

            sent += burst;
            if (!RunChecks.WaitUntil(() => nic.PacketsSeen - seenBefore >= sent && consumers.Sum(c => c.Received) >= sent - 2048, TimeSpan.FromSeconds(5)))
            {
                failures.Add($"stalled: the driver read {nic.PacketsSeen - seenBefore} and the consumers received {consumers.Sum(c => c.Received)} of {sent} sent");
                break;
            }

            if (o.Progress && clock.Elapsed >= nextPrint)
            {
                progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{clock.Elapsed.TotalSeconds,6:F1}s] sent {sent}  delivered {SumQueues(nic, o.Queues, c => c.Packets)}  received {consumers.Sum(c => c.Received)}  mismatches {consumers.Sum(c => c.Mismatches)}"));
                nextPrint += TimeSpan.FromSeconds(1);
            }
        }

        return sent;
    }

    private static long SumQueues(TunNic nic, int queues, Func<RxCounters, long> f)
    {
        long s = 0;
        for (int q = 0; q < queues; q++)
        {
            s += f(nic.QueueCounters(q));
        }

        return s;
    }
}
