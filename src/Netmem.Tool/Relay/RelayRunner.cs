using System.Diagnostics;
using System.Globalization;
using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
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
/// <para>On SimNic (no setup, no root): a generator thread injects sequence-numbered datagrams
/// into queue 0 (bound for devmem) for the relay's port; the relay sends them on with the far
/// end's port; the NIC's wire loops them into queue 1, which stays on system pages, so the far
/// end's socket reads them from readable memory and a <see cref="FlowConsumer"/> verifies them.
/// The generator keeps at most <see cref="RelayRunOptions.Window"/> datagrams unaccounted for,
/// so no FIFO, socket or send window overflows; anything dropped anyway is counted by reason.</para>
/// <para>TunNic and XdpNic cannot transmit from a dmabuf yet: those drivers fail at once with
/// <see cref="PlatformNotSupportedException"/> saying so.</para>
/// </remarks>
public static class RelayRunner
{
    /// <summary>The relay's UDP port.</summary>
    public const ushort RelayPort = 9200;

    /// <summary>The far end's UDP port, where the relay sends.</summary>
    public const ushort FarPort = 9201;

    /// <summary>The largest payload: a 9000-byte MTU less IPv4 and UDP headers.</summary>
    public const int MaxPayload = 8972;

    private const uint GeneratorAddress = 0xC0000201; // 192.0.2.1
    private const uint RelayAddress = 0xC0000264;     // 192.0.2.100
    private const uint FarAddress = 0xC00002C8;       // 192.0.2.200
    private const ushort GeneratorPort = 40000;

    /// <summary>Runs the relay. <paramref name="stop"/> ends generating early (the checks then use what was generated).</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="PlatformNotSupportedException">The driver cannot transmit from a dmabuf yet; the message says which and why.</exception>
    public static RelayRunResult Run(RelayRunOptions o, TextWriter progress, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(progress);
        Validate(o);
        return o.Driver switch
        {
            RelayDriver.Tun => throw new PlatformNotSupportedException(
                "TunNic cannot transmit yet: its driver has no devmem TX (NetDevice.TxOps), so a region cannot be bound for transmit on it. Run the relay on the default SimNic driver."),
            RelayDriver.Xdp => throw new PlatformNotSupportedException(
                "XdpNic cannot transmit from a dmabuf yet: its driver has no devmem TX (NetDevice.TxOps). Run the relay on the default SimNic driver."),
            _ => RunSimNic(o, progress, stop),
        };
    }

    /// <summary>Writes the human-readable summary.</summary>
    public static void PrintSummary(RelayRunResult r, TextWriter w)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(w);
        CultureInfo c = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(c, $"netmem relay: {r.Driver}, queue 0 bound to dmabuf binding {r.BindingId} (rx) and {r.TxBindingId} (tx), port {RelayPort} -> {FarPort}, {r.Payload} B payload, {r.Seconds:F2} s"));
        w.WriteLine(string.Create(c, $"  rate        {r.PacketsPerSecond / 1e6:F3} Mpps   {r.GbitPerSecond:F2} Gbit/s payload relayed"));
        w.WriteLine(string.Create(c, $"  packets     generated {r.PacketsInjected}  relayed {r.PacketsRelayed}  verified {r.PacketsVerified}  mismatches {r.PayloadMismatches}  dropped {r.PacketsDropped}  lost {r.PacketsLost}"));
        RunChecks.PrintDrops(r, w);
        w.WriteLine(string.Create(c, $"  zero-copy   sends {r.PacketsRelayed}  completed {r.ZeroCopyCompleted}  copied {r.ZeroCopyCopied}  cancelled {r.ZeroCopyCancelled}  enobufs waits {r.SendRetries}  multi-fragment {r.MultiFragmentDatagrams} ({r.FragmentsReceived} fragments)"));
        w.WriteLine(string.Create(c, $"  copied      relay {r.RelayBytesCopied} B  far end {r.FarEndBytesCopied} B (verifier reads readable memory)  device {r.DeviceDmaBytes} B (DMA; simulated by the CPU on SimNic)"));
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

    private static RelayRunResult RunSimNic(RelayRunOptions o, TextWriter progress, CancellationToken stop)
    {
        using var region = DmabufRegion.CreateMemfd("netmem-relay", o.RegionBytes);
        var nic = new SimNic("relay0", new SimNicOptions { RxQueues = 2, Mtu = 9000 });
        DmabufBindingHandle? rx = null;
        DmabufBindingHandle? tx = null;
        FlowConsumer? farEnd = null;
        RelayLoop? loop = null;
        try
        {
            // Queue 0 receives into the region; the same region is bound for transmit; the wire
            // takes what the NIC sends to queue 1, which stays on system pages.
            rx = nic.Device.BindDmabuf(region, [0]);
            tx = nic.Device.BindDmabufTx(region);
            nic.LoopTxTo(nic, 1);
            HashSet<PagePool> pools = [.. nic.Device.PagePools];

            DevmemSocket relaySocket = nic.OpenSocket(FlowKey.Udp(RelayPort));
            relaySocket.ZeroCopy = true;
            relaySocket.Connect(nic.Device, Endpoint(RelayAddress, RelayPort), Endpoint(FarAddress, FarPort));
            DevmemSocket farSocket = nic.OpenSocket(FlowKey.Udp(FarPort));
            farEnd = new FlowConsumer(farSocket, o.Payload, corruptOnce: false);
            var relay = new DevmemRelay(relaySocket, rx.BindingId, tx.BindingId, nic.Options.MaxFrame);
            loop = new RelayLoop(relay);

            var accounting = new RelayAccounting(nic, relay, farEnd);
            int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
            var clock = Stopwatch.StartNew();
            long generated = Generate(o, nic, accounting, loop, progress, clock, stop);
            double seconds = clock.Elapsed.TotalSeconds;

            // Everything generated is verified or counted as dropped, unless it was lost.
            bool settled = RunChecks.WaitUntil(() => accounting.Settled(generated) || loop.Fault is not null, TimeSpan.FromSeconds(10));
            loop.Stop(TimeSpan.FromSeconds(5));
            nic.WaitIdle(TimeSpan.FromSeconds(5));
            farEnd.Stop();
            int g0 = GC.CollectionCount(0) - gen0, g1 = GC.CollectionCount(1) - gen1, g2 = GC.CollectionCount(2) - gen2;

            Dictionary<string, long> drops = accounting.DropsByReason();
            long dropped = drops.Values.Sum();
            long completionsOutstanding = relaySocket.SendsInFlight + relaySocket.CompletionsPending;
            long tokensOutstanding = relaySocket.TokensOutstanding;
            long delivered = nic.QueueCounters(1).Packets;
            long farReceived = farEnd.Received;
            long verified = farEnd.Verified;
            long mismatches = farEnd.Mismatches;
            long lost = generated - farReceived - dropped;
            TxQueueStats txStats = nic.TxStats;
            long deviceBytes = nic.QueueCounters(0).Bytes + txStats.Bytes + nic.QueueCounters(1).Bytes;
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
            pools.UnionWith(nic.Device.PagePools);
            nic.Dispose();
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

            if (!settled)
            {
                failures.Add($"stalled: {generated} generated, {farReceived} received at the far end, {dropped} counted as dropped");
            }

            RunChecks.CheckCommon(failures, mismatches, delivered, farReceived, inflight, outstanding, rxBinding.IsFreed && txBinding.IsFreed);
            Check(failures, generated, relay, verified, lost, completionsOutstanding, tokensOutstanding);

            return new RelayRunResult
            {
                Driver = "simnic",
                Seconds = seconds,
                Payload = o.Payload,
                Queues = 2,
                Flows = 1,
                PacketsInjected = generated,
                PacketsDelivered = delivered,
                PacketsReceived = farReceived,
                PacketsVerified = verified,
                PayloadMismatches = mismatches,
                PacketsPerSecond = verified / seconds,
                GbitPerSecond = relay.RelayedBytes * 8 / seconds / 1e9,
                DropsByReason = drops,
                AllocFast = stats.AllocFast,
                AllocSlow = stats.AllocSlow + stats.AllocSlowHighOrder,
                AllocRefill = stats.AllocRefill,
                RecycleCached = stats.RecycleCached,
                RecycleRing = stats.RecycleRing,
                RecycleRingFull = stats.RecycleRingFull,
                Gen0Collections = g0,
                Gen1Collections = g1,
                Gen2Collections = g2,
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
                FarEndBytesCopied = farEnd.LinearBytes,
                DeviceDmaBytes = deviceBytes,
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

            farEnd?.Stop();
            rx?.Dispose();
            tx?.Dispose();
            nic.Dispose();
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
    private static long Generate(RelayRunOptions o, SimNic nic, RelayAccounting accounting, RelayLoop loop, TextWriter progress, Stopwatch clock, CancellationToken stop)
    {
        byte[] frame = new byte[FrameBuilder.UdpV4Overhead + o.Payload];
        FrameBuilder.BuildUdp(frame, ipv6: false, GeneratorAddress, RelayAddress, GeneratorPort, RelayPort, new byte[o.Payload]);
        Span<byte> payload = frame.AsSpan(FrameBuilder.UdpV4Overhead);
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
                    $"[{now.TotalSeconds,6:F1}s] generated {n}  relayed {accounting.Relay.Relayed}  verified {accounting.FarEnd.Verified}  dropped {accounting.Dropped()}  tokens held {accounting.Relay.TokensHeld}"));
                nextPrint += TimeSpan.FromSeconds(1);
            }

            // Pacing: the window is re-read only when it looks full.
            if (n - accounted >= o.Window && n - (accounted = accounting.Accounted()) >= o.Window
                || nic.FreeFifoSlots(0) == 0)
            {
                spin.SpinOnce(sleep1Threshold: 20);
                continue;
            }

            spin = default;
            FrameBuilder.FillSequencePayload(payload, (ulong)n);
            nic.Inject(0, frame);
            n++;
        }

        return n;
    }

    private static IPEndPoint Endpoint(uint address, ushort port) =>
        new(new IPAddress([(byte)(address >> 24), (byte)(address >> 16), (byte)(address >> 8), (byte)address]), port);
}
