using System.Diagnostics;
using System.Globalization;
using Netmem.Devmem;
using Netmem.Native;
using Netmem.Drivers.Common;
using Netmem.Net;
using Netmem.Tool.Demo;

namespace Netmem.Tool.Relay;

/// <summary>
/// <c>netmem relay</c>: a zero-copy UDP relay. Datagrams arrive on an rx queue bound to a memfd
/// region, and a <see cref="DevmemRelay"/> sends each one to a second address straight from the
/// region fragments it arrived in, through a transmit binding of the same region, returning the
/// rx tokens only after each send's completion. The far end verifies every payload byte.
/// </summary>
/// <remarks>
/// <para>On SimNic (no setup, no root) see <see cref="SimNicRelayRig"/>; on TunNic (root, a
/// private network namespace, kernel UDP sockets at both ends) see <see cref="TunRelayRig"/>; on
/// XdpNic (root, a veth pair between two private namespaces, AF_XDP rx and tx from the same
/// UMEM, kernel UDP sockets in the peer namespace) see <see cref="XdpRelayRig"/>.
/// The generator keeps at most <see cref="RelayRunOptions.Window"/> datagrams unaccounted for,
/// so no FIFO, socket or send window overflows; anything dropped anyway is counted by reason.</para>
/// <para>tun and xdp fail at once with <see cref="PlatformNotSupportedException"/>, saying why,
/// without network namespaces or <c>/dev/net/tun</c>, and xdp also without AF_XDP.</para>
/// </remarks>
public static class RelayRunner
{
    /// <summary>The relay's UDP port.</summary>
    public const ushort RelayPort = 9200;

    /// <summary>The far end's UDP port, where the relay sends.</summary>
    public const ushort FarPort = 9201;

    /// <summary>The largest payload: a 9000-byte MTU less IPv4 and UDP headers.</summary>
    public const int MaxPayload = 8972;

    /// <summary>Runs the relay. <paramref name="stop"/> ends generating early (the checks then use what was generated).</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="PlatformNotSupportedException">(tun, xdp) Network namespaces or <c>/dev/net/tun</c> are not available, or (xdp) AF_XDP sockets; the message says which and why.</exception>
    public static RelayRunResult Run(RelayRunOptions o, TextWriter progress, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(progress);
        Validate(o);
        return o.Driver switch
        {
            RelayDriver.Tun => RunInNamespaces(o, "tun", KernelSocketRelayRig.MaxPayload, max => new TunRelayRig(max), progress, stop),
            RelayDriver.Xdp => RunInNamespaces(o, "xdp", KernelSocketRelayRig.MaxPayload, max => new XdpRelayRig(max), progress, stop),
            _ => RunOn(new SimNicRelayRig(), o, progress, stop),
        };
    }

    /// <summary>Writes the human-readable summary.</summary>
    public static void PrintSummary(RelayRunResult r, TextWriter w)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(w);
        CultureInfo c = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(c, $"netmem relay: {r.Driver}, queue 0 bound to dmabuf binding {r.BindingId} (rx) and {r.TxBindingId} (tx), port {RelayPort} -> {FarPort}, {r.Payload} B payload, {r.Seconds:F2} s"));
        if (r.DevicePath is not null)
        {
            w.WriteLine($"  device      {r.DevicePath}");
        }

        w.WriteLine(string.Create(c, $"  rate        {r.PacketsPerSecond / 1e6:F3} Mpps   {r.GbitPerSecond:F2} Gbit/s payload relayed"));
        w.WriteLine(string.Create(c, $"  packets     generated {r.PacketsInjected}  relayed {r.PacketsRelayed}  verified {r.PacketsVerified}  mismatches {r.PayloadMismatches}  dropped {r.PacketsDropped}  lost {r.PacketsLost}"));
        RunChecks.PrintDrops(r, w);
        w.WriteLine(string.Create(c, $"  zero-copy   sends {r.PacketsRelayed}  completed {r.ZeroCopyCompleted}  copied {r.ZeroCopyCopied}  cancelled {r.ZeroCopyCancelled}  enobufs waits {r.SendRetries}  multi-fragment {r.MultiFragmentDatagrams} ({r.FragmentsReceived} fragments)"));
        string driverCopy = r.DriverBytesCopied == 0 ? "" : " (the driver's copy fallback: the device could not send from the fragments)";
        w.WriteLine(string.Create(c, $"  copied      relay {r.RelayBytesCopied} B  driver {r.DriverBytesCopied} B{driverCopy}  far end {r.FarEndBytesCopied} B (verifier reads readable memory)  device {r.DeviceDmaBytes} B ({r.DeviceBytesMovedBy})"));
        w.WriteLine(string.Create(c, $"  at end      completions outstanding {r.CompletionsOutstanding}  tokens outstanding {r.TokensOutstanding}"));
        RunChecks.PrintPoolsAndResult(r, w);
    }

    /// <summary>The result as one JSON object (snake_case keys).</summary>
    public static string ToJson(RelayRunResult r) => System.Text.Json.JsonSerializer.Serialize(r, RelayJsonContext.Default.RelayRunResult);

    private static void Validate(RelayRunOptions o)
    {
        if (o.Payload < 1 || o.Payload > MaxPayload)
        {
            throw new ArgumentException($"--payload must be 1..{MaxPayload} bytes (a 9000-byte MTU less IPv4 and UDP headers).");
        }

        if (o.Seconds <= 0 || o.Seconds > 3600)
        {
            throw new ArgumentException("--seconds must be above 0 and at most 3600.");
        }

        if (o.Count < 0)
        {
            throw new ArgumentException("--count must be 0 (no bound) or more.");
        }

        if (o.Window < 1 || o.Window > 512)
        {
            throw new ArgumentException("--window must be 1..512 (the FIFOs hold 1024 frames, the socket 4096 fragments).");
        }

        if (o.RegionBytes < (4L << 20) || o.RegionBytes % DmabufRegion.Granule != 0)
        {
            throw new ArgumentException("the region must be at least 4 MiB and a multiple of 4 KiB.");
        }
    }

    /// <summary>A run on a driver that needs private network namespaces (tun, xdp): checks the payload and the machine first.</summary>
    private static RelayRunResult RunInNamespaces(RelayRunOptions o, string driver, int maxPayload, Func<long, RelayRig> create, TextWriter progress, CancellationToken stop)
    {
        if (o.Payload > maxPayload)
        {
            throw new ArgumentException($"--payload must be 1..{maxPayload} bytes on {driver} (its 1500-byte MTU less IPv4 and UDP headers).");
        }

        if (!NetNamespace.IsSupported)
        {
            throw new PlatformNotSupportedException(NetNamespace.UnsupportedReason);
        }

        if (o.Driver == RelayDriver.Xdp && XskSocket.UnsupportedReason is string why)
        {
            throw new PlatformNotSupportedException("AF_XDP: " + why);
        }

        return RunOn(create(o.Count == 0 ? long.MaxValue : o.Count), o, progress, stop);
    }

    /// <summary>
    /// The run on any driver: binds queue 0 of <paramref name="rig"/>'s device and the same
    /// region for transmit, relays what the generator sends, settles, tears down and checks.
    /// Takes ownership of <paramref name="rig"/>.
    /// </summary>
    internal static RelayRunResult RunOn(RelayRig rig, RelayRunOptions o, TextWriter progress, CancellationToken stop)
    {
        DmabufRegion? region = null;
        DmabufBindingHandle? rx = null;
        DmabufBindingHandle? tx = null;
        RelayLoop? loop = null;
        try
        {
            // Queue 0 receives into the region; the same region is bound for transmit.
            region = DmabufRegion.CreateMemfd("netmem-relay", o.RegionBytes);
            rx = rig.Device.BindDmabuf(region, [0]);
            tx = rig.Device.BindDmabufTx(region);
            HashSet<PagePool> pools = [.. rig.Device.PagePools];

            DevmemSocket relaySocket = rig.Open(o.Payload);
            var relay = new DevmemRelay(relaySocket, rx.BindingId, tx.BindingId, rig.MaxFrame);
            loop = new RelayLoop(relay);

            var accounting = new RelayAccounting(rig, relay);
            GcCollections gcStart = GcCollections.Now();
            var clock = Stopwatch.StartNew();
            long generated = Generate(o, rig, accounting, loop, progress, clock, stop);
            double seconds = clock.Elapsed.TotalSeconds;

            // Everything generated is verified or counted as dropped, unless it was lost.
            bool settled = RunChecks.WaitUntil(() => accounting.Settled(generated) || loop.Fault is not null, TimeSpan.FromSeconds(10));
            loop.Stop(TimeSpan.FromSeconds(5));
            rig.Quiesce();
            GcCollections gc = GcCollections.Since(gcStart);

            Dictionary<string, long> drops = accounting.DropsByReason();
            long dropped = drops.Values.Sum();
            long completionsOutstanding = relaySocket.SendsInFlight + relaySocket.CompletionsPending;
            long tokensOutstanding = relaySocket.TokensOutstanding;
            long delivered = rig.Delivered;
            long farReceived = rig.FarReceived;
            long verified = rig.FarVerified;
            long mismatches = rig.FarMismatches;
            long lost = generated - farReceived - dropped;
            TxQueueStats txStats = rig.TxStats;
            long deviceBytes = rig.DeviceBytes;
            string deviceBytesMovedBy = rig.DeviceBytesMovedBy;
            long farEndBytes = rig.FarEndBytesCopied;
            long driverBytes = rig.DriverBytesCopied;
            string? path = rig.DevicePath;
            PagePoolStats stats = RunChecks.Total(pools);

            // Teardown: unbind both bindings, close the device (and its sockets); every pool must
            // be freed, the rx binding's net_iovs all back, and both bindings freed.
            int rxId = rx.BindingId;
            int txId = tx.BindingId;
            DmabufBinding rxBinding = rx.Binding;
            DmabufBinding txBinding = tx.Binding;
            rx.Dispose();
            rx = null;
            tx.Dispose();
            tx = null;
            pools.UnionWith(rig.Device.PagePools);
            rig.Dispose();
            long inflight = RunChecks.WaitPoolsFreed(pools, TimeSpan.FromSeconds(5));
            RunChecks.WaitUntil(() => rxBinding.IsFreed && txBinding.IsFreed, TimeSpan.FromSeconds(5));
            long outstanding = rxBinding.Size - rxBinding.Avail;

            List<string> failures = [];
            if (loop.Fault is { } fault)
            {
                failures.Add($"the relay failed: {fault.GetType().Name}: {fault.Message}");
            }
            else if (!loop.Flushed)
            {
                failures.Add("the relay did not get every completion and token back within 5 s of the end");
            }

            if (rig.FarEndFault is { } farFault)
            {
                failures.Add($"the far end failed: {farFault.GetType().Name}: {farFault.Message}");
            }

            if (!settled)
            {
                failures.Add($"stalled: {generated} generated, {farReceived} received at the far end, {dropped} counted as dropped");
            }

            RunChecks.CheckCommon(failures, mismatches, delivered, farReceived, inflight, outstanding, rxBinding.IsFreed && txBinding.IsFreed);
            Check(failures, generated, relay, verified, lost, completionsOutstanding, tokensOutstanding);

            return new RelayRunResult
            {
                Driver = rig.Driver,
                Seconds = seconds,
                Payload = o.Payload,
                Queues = rig.Queues,
                Flows = 1,
                PacketsInjected = generated,
                PacketsDelivered = delivered,
                PacketsReceived = farReceived,
                PacketsVerified = verified,
                PayloadMismatches = mismatches,
                PacketsPerSecond = verified / seconds,
                GbitPerSecond = relay.RelayedBytes * 8 / seconds / 1e9,
                DropsByReason = drops,
                PoolCounters = stats,
                Collections = gc,
                InflightAfterTeardown = inflight,
                GenPoolOutstandingAfterTeardown = outstanding,
                BindingId = rxId,
                TxBindingId = txId,
                PacketsRelayReceived = relay.Received,
                PacketsRelayed = relay.Relayed,
                PacketsDropped = dropped,
                PacketsLost = lost,
                MultiFragmentDatagrams = relay.MultiFragment,
                FragmentsReceived = relay.Fragments,
                ZeroCopyCompleted = relay.Completed,
                ZeroCopyCopied = txStats.Copied,
                ZeroCopyCancelled = relay.Cancelled,
                SendRetries = relay.Blocked,
                RelayBytesCopied = relay.BytesCopied,
                FarEndBytesCopied = farEndBytes,
                DriverBytesCopied = driverBytes,
                DevicePath = path,
                DeviceDmaBytes = deviceBytes,
                DeviceBytesMovedBy = deviceBytesMovedBy,
                CompletionsOutstanding = completionsOutstanding,
                TokensOutstanding = tokensOutstanding,
                Failures = failures,
            };
        }
        finally
        {
            // On the success path these are no-ops.
            if (loop is not null && loop.IsRunning)
            {
                loop.Stop(TimeSpan.Zero);
            }

            rx?.Dispose();
            tx?.Dispose();
            rig.Dispose();
            region?.Dispose();
        }
    }

    /// <summary>The relay's own checks: every datagram accounted for, everything relayed verified, nothing held.</summary>
    private static void Check(List<string> failures, long generated, DevmemRelay relay, long verified, long lost, long completionsOutstanding, long tokensOutstanding)
    {
        if (verified != relay.Relayed)
        {
            failures.Add($"{relay.Relayed} datagrams relayed but {verified} verified at the far end");
        }

        if (lost != 0)
        {
            failures.Add($"{lost} of {generated} datagrams lost without being counted as dropped");
        }

        if (relay.Received != relay.Relayed + relay.Unrelayable + relay.SendFailures)
        {
            failures.Add($"the relay received {relay.Received} datagrams but relayed {relay.Relayed}, could not relay {relay.Unrelayable} and had {relay.SendFailures} sends refused");
        }

        if (relay.Completed + relay.Cancelled != relay.Relayed)
        {
            failures.Add($"{relay.Relayed} sends but {relay.Completed} completed and {relay.Cancelled} cancelled");
        }

        if (relay.SendFailures != 0)
        {
            failures.Add($"{relay.SendFailures} sends refused (last errno {relay.LastSendErrno})");
        }

        if (completionsOutstanding != 0)
        {
            failures.Add($"{completionsOutstanding} zero-copy sends still in flight or unreported at the end");
        }

        if (tokensOutstanding != 0 || relay.TokensHeld != 0)
        {
            failures.Add($"{tokensOutstanding} tokens still held by the relay's socket at the end");
        }

        if (relay.BytesCopied != 0)
        {
            failures.Add($"{relay.BytesCopied} payload bytes arrived in readable memory and were copied on the relay's path");
        }
    }

    /// <summary>
    /// Injects sequence-numbered datagrams into queue 0 until the count or the time is reached,
    /// keeping at most <see cref="RelayRunOptions.Window"/> unaccounted for. Returns how many.
    /// </summary>
    private static long Generate(RelayRunOptions o, RelayRig rig, RelayAccounting accounting, RelayLoop loop, TextWriter progress, Stopwatch clock, CancellationToken stop)
    {
        TimeSpan duration = TimeSpan.FromSeconds(o.Seconds);
        TimeSpan nextPrint = TimeSpan.FromSeconds(1);
        long limit = o.Count == 0 ? long.MaxValue : o.Count;
        long n = 0;
        long accounted = 0;
        SpinWait spin = default;
        while (n < limit && !stop.IsCancellationRequested && loop.Fault is null)
        {
            TimeSpan now = clock.Elapsed;
            if (now >= duration)
            {
                break;
            }

            if (o.Progress && now >= nextPrint)
            {
                progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{now.TotalSeconds,6:F1}s] generated {n}  relayed {accounting.Relay.Relayed}  verified {accounting.Rig.FarVerified}  dropped {accounting.Dropped()}  tokens held {accounting.Relay.TokensHeld}"));
                nextPrint += TimeSpan.FromSeconds(1);
            }

            // Pacing: the window is re-read only when it looks full.
            if (n - accounted >= o.Window && n - (accounted = accounting.Accounted()) >= o.Window
                || !rig.TryGenerate((ulong)n))
            {
                spin.SpinOnce(sleep1Threshold: 20);
                continue;
            }

            spin = default;
            n++;
        }

        return n;
    }
}
