using System.Diagnostics;
using System.Globalization;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;

namespace Netmem.Tool.Demo;

/// <summary>
/// <c>netmem demo</c>: the whole system on synthetic traffic. A SimNic whose queue 0 stays on
/// system pages and whose other queues are bound to a memfd region; one socket and one consumer
/// thread per flow that reads every payload through the region (or the linear copy), verifies
/// it, and returns its tokens; then a teardown that must give every netmem back.
/// </summary>
public static class DemoRunner
{
    private const ushort BasePort = 9000;

    /// <summary>Runs the demo. <paramref name="stop"/> ends traffic early (or, with Wait, at all).</summary>
    public static DemoResult Run(DemoOptions o, TextWriter progress, CancellationToken stop, Action? onRunning = null)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(progress);
        Validate(o);

        // Two regions, so a rebind can move to the other while the sockets still hold fragments
        // of the first: two bindings of one region would hand out the same bytes twice.
        using var region = DmabufRegion.CreateMemfd("netmem-demo", o.RegionBytes);
        using var spare = o.RebindPeriod is null ? null : DmabufRegion.CreateMemfd("netmem-demo-b", o.RegionBytes);
        var nic = new SimNic("netmem0", new SimNicOptions { RxQueues = o.Queues, Mtu = 9000 });
        int[] devmemQueues = Enumerable.Range(1, o.Queues - 1).ToArray();
        DmabufBindingHandle handle = nic.Device.BindDmabuf(region, devmemQueues);
        List<DmabufBindingHandle> handles = [handle];
        HashSet<PagePool> pools = [.. nic.Device.PagePools];

        var consumers = new FlowConsumer[o.Flows];
        for (int f = 0; f < o.Flows; f++)
        {
            DevmemSocket socket = nic.OpenSocket(FlowKey.Udp((ushort)(BasePort + f)));
            consumers[f] = new FlowConsumer(socket, o.Payload, o.InjectCorruption && f == o.Flows - 1);
        }

        GcCollections gcStart = GcCollections.Now();
        var clock = Stopwatch.StartNew();
        using var injectorStop = CancellationTokenSource.CreateLinkedTokenSource(stop);
        long injected = 0;
        var injector = new Thread(() => injected = Inject(nic, o, injectorStop.Token)) { IsBackground = true, Name = "demo-injector" };
        injector.Start();

        TimeSpan duration = o.Wait ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(o.Seconds);
        bool interactive = o.Progress == ProgressMode.Live;
        bool liveLineShown = false;
        TimeSpan nextPrint = TimeSpan.FromMilliseconds(interactive ? 250 : 1000);
        TimeSpan nextRebind = o.RebindPeriod ?? Timeout.InfiniteTimeSpan;
        int rebinds = 0;
        onRunning?.Invoke();
        while (!stop.IsCancellationRequested && (o.Wait || clock.Elapsed < duration))
        {
            stop.WaitHandle.WaitOne(50);
            if (o.RebindPeriod is { } period && clock.Elapsed >= nextRebind)
            {
                // Restart the devmem queues under live traffic: back to system pages, then bound
                // to the other region, once every fragment of its previous binding came back.
                DmabufRegion next = ReferenceEquals(handle.Binding.Region, region) ? spare! : region;
                if (handles.All(h => h.Binding.IsFreed || !ReferenceEquals(h.Binding.Region, next)))
                {
                    handle.Dispose();
                    handle = nic.Device.BindDmabuf(next, devmemQueues);
                    handles.Add(handle);
                    pools.UnionWith(nic.Device.PagePools);
                    rebinds++;
                }

                nextRebind = clock.Elapsed + period;
            }

            if (o.Progress != ProgressMode.None && clock.Elapsed >= nextPrint)
            {
                if (!interactive || o.IsForeground())
                {
                    PrintProgress(progress, interactive, clock.Elapsed, nic, consumers);
                    liveLineShown |= interactive;
                }

                nextPrint += TimeSpan.FromMilliseconds(interactive ? 250 : 1000);
            }
        }

        injectorStop.Cancel();
        injector.Join();
        double seconds = clock.Elapsed.TotalSeconds;
        nic.WaitIdle(TimeSpan.FromSeconds(10));
        long delivered = Enumerable.Range(0, o.Queues).Sum(q => nic.QueueCounters(q).Packets);
        RunChecks.WaitReceived(consumers, delivered, TimeSpan.FromSeconds(10));
        foreach (FlowConsumer c in consumers)
        {
            c.Stop();
        }

        if (liveLineShown)
        {
            progress.WriteLine();
        }

        GcCollections gc = GcCollections.Since(gcStart);
        PagePoolStats total = RunChecks.Total(pools);
        Dictionary<string, long> drops = RxCounters.SumDropsByReason(Enumerable.Range(0, o.Queues).Select(nic.QueueCounters))
            .ToDictionary(kv => kv.Key.ToString(), kv => kv.Value);

        long payloadBytes = Enumerable.Range(0, o.Queues).Sum(q => nic.QueueCounters(q).Bytes);
        long received = consumers.Sum(c => c.Received);
        long verified = consumers.Sum(c => c.Verified);
        long mismatches = consumers.Sum(c => c.Mismatches);

        // Teardown: sockets close and return what they hold, queues go back to system pages,
        // the device goes away; every pool must then have every netmem back.
        pools.UnionWith(nic.Device.PagePools);
        handle.Dispose();
        nic.Dispose();
        long inflight = RunChecks.WaitPoolsFreed(pools, TimeSpan.FromSeconds(5));
        long outstanding = handles.Sum(h => h.Binding.Size - h.Binding.Avail);

        List<string> failures = [];
        RunChecks.CheckCommon(failures, mismatches, delivered, received, inflight, outstanding, handles.All(h => h.Binding.IsFreed));

        return new DemoResult
        {
            Seconds = seconds,
            Payload = o.Payload,
            Queues = o.Queues,
            Flows = o.Flows,
            PacketsInjected = injected,
            PacketsDelivered = delivered,
            PacketsReceived = received,
            PacketsVerified = verified,
            PayloadMismatches = mismatches,
            PacketsPerSecond = delivered / seconds,
            GbitPerSecond = payloadBytes * 8 / seconds / 1e9,
            DropsByReason = drops,
            PoolCounters = total,
            Collections = gc,
            InflightAfterTeardown = inflight,
            GenPoolOutstandingAfterTeardown = outstanding,
            BindingId = handle.BindingId,
            Rebinds = rebinds,
            Failures = failures,
        };
    }

    /// <summary>Writes the human-readable summary.</summary>
    public static void PrintSummary(DemoResult r, TextWriter w)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(w);
        CultureInfo c = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(c, $"netmem demo: {r.Queues} queues (queue 0 system pages, 1..{r.Queues - 1} dmabuf binding {r.BindingId}), {r.Flows} flows, {r.Payload} B payload, {r.Seconds:F1} s"));
        w.WriteLine(string.Create(c, $"  rate        {r.PacketsPerSecond / 1e6:F3} Mpps   {r.GbitPerSecond:F2} Gbit/s payload"));
        w.WriteLine(string.Create(c, $"  packets     injected {r.PacketsInjected}  delivered {r.PacketsDelivered}  received {r.PacketsReceived}  verified {r.PacketsVerified}  mismatches {r.PayloadMismatches}"));
        RunChecks.PrintDrops(r, w);
        RunChecks.PrintPoolsAndResult(r, w);
    }

    private static void Validate(DemoOptions o)
    {
        if (o.Queues < 2 || o.Queues > 16)
        {
            throw new ArgumentException("--queues must be 2..16 (queue 0 stays on system pages, the rest are bound to the region).");
        }

        if (o.Payload < 1 || o.Payload > 8972)
        {
            throw new ArgumentException("--payload must be 1..8972 bytes (a 9000-byte MTU less IPv4 and UDP headers).");
        }

        if (o.Flows < 1 || o.Flows > 64)
        {
            throw new ArgumentException("--flows must be 1..64.");
        }

        if (!o.Wait && (o.Seconds <= 0 || o.Seconds > 3600))
        {
            throw new ArgumentException("--seconds must be above 0 and at most 3600.");
        }
    }

    /// <summary>One thread puts frames on the wire, round-robin over flows, pacing on the queue FIFOs.</summary>
    private static long Inject(SimNic nic, DemoOptions o, CancellationToken stop)
    {
        int frameLen = FrameBuilder.UdpV4Overhead + o.Payload;
        var frames = new byte[o.Flows][];
        var seqs = new ulong[o.Flows];
        for (int f = 0; f < o.Flows; f++)
        {
            frames[f] = new byte[frameLen];
            FrameBuilder.BuildUdp(frames[f], ipv6: false, 0xC0000201u + (uint)f, 0xC0000264u, (ushort)(40000 + f), (ushort)(BasePort + f), new byte[o.Payload]);
        }

        long n = 0;
        while (!stop.IsCancellationRequested)
        {
            for (int f = 0; f < o.Flows; f++)
            {
                int q = f % o.Queues;
                SpinWait spin = default;
                while (nic.FreeFifoSlots(q) == 0)
                {
                    if (stop.IsCancellationRequested)
                    {
                        return n;
                    }

                    spin.SpinOnce();
                }

                FrameBuilder.FillSequencePayload(frames[f].AsSpan(FrameBuilder.UdpV4Overhead), seqs[f]++);
                nic.Inject(q, frames[f]);
                n++;
            }
        }

        return n;
    }

    private static void PrintProgress(TextWriter w, bool interactive, TimeSpan t, SimNic nic, FlowConsumer[] consumers)
    {
        long delivered = 0, drops = 0;
        for (int q = 0; q < nic.Device.RxQueues.Count; q++)
        {
            delivered += nic.QueueCounters(q).Packets;
            drops += nic.QueueCounters(q).Drops;
        }

        long inflight = nic.Device.PagePools.Sum(p => p.Inflight);
        string line = string.Create(CultureInfo.InvariantCulture,
            $"[{t.TotalSeconds,6:F1}s] {delivered / t.TotalSeconds / 1e6,7:F3} Mpps  delivered {delivered}  received {consumers.Sum(c => c.Received)}  drops {drops}  mismatches {consumers.Sum(c => c.Mismatches)}  inflight {inflight}");
        if (interactive)
        {
            w.Write("\r" + line + "   ");
        }
        else
        {
            w.WriteLine(line);
        }
    }
}
