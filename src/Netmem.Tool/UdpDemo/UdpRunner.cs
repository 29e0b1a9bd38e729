using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Udp;
using Netmem.Tool.Demo;

namespace Netmem.Tool.UdpDemo;

/// <summary>
/// <c>netmem udp</c>: <see cref="UdpReceiver"/>s on loopback (no root), one or more sender
/// threads, every payload verified, then teardown checks: sent = received + the kernel's drops,
/// nothing left in flight, every region binding freed.
/// </summary>
/// <remarks>
/// Senders pace on credit: at most <see cref="UdpRunOptions.Window"/> datagrams ahead of what
/// the receivers consumed, so the loopback socket buffer does not overflow. Each receiver runs on
/// its own thread, receives in batches, verifies each payload (through its region with
/// <see cref="UdpRunOptions.Region"/>) and returns the batch.
/// </remarks>
public static class UdpRunner
{
    private const int Batch = 64;

    /// <summary>The most UDP payload one IPv4 send carries (and so one GSO send).</summary>
    private const int MaxSendPayload = 65507;

    /// <summary>Runs the scenario. <paramref name="stop"/> ends sending early (the checks then use what was sent).</summary>
    public static UdpRunResult Run(UdpRunOptions o, TextWriter progress, CancellationToken stop)
    {
        ArgumentNullException.ThrowIfNull(o);
        ArgumentNullException.ThrowIfNull(progress);
        Validate(o);
        List<string> failures = [];
        var regions = new List<DmabufRegion>();
        var receivers = new List<UdpReceiver>();
        var consumers = new List<Consumer>();
        try
        {
            var first = new IPEndPoint(o.IPv6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0);
            for (int r = 0; r < o.Receivers; r++)
            {
                DmabufRegion? region = null;
                if (o.Region)
                {
                    region = DmabufRegion.CreateMemfd("netmem-udp-" + r.ToString(CultureInfo.InvariantCulture), o.RegionBytes);
                    regions.Add(region);
                }

                var rx = new UdpReceiver(new UdpReceiverOptions
                {
                    LocalEndpoint = receivers.Count == 0 ? first : receivers[0].LocalEndpoint,
                    ReusePort = o.Receivers > 1,
                    Path = o.Path,
                    Region = region,
                    Gro = o.Gro,

                    // With Gro each buffer is 128 KiB and holds up to 64 datagrams.
                    BufferRingEntries = o.Gro ? 128 : 1024,
                    Name = "netmem-udp-rx" + r.ToString(CultureInfo.InvariantCulture),
                });
                receivers.Add(rx);
            }

            List<PagePool> pools = receivers.Select(r => r.Pool).ToList();
            List<DmabufBinding> bindings = receivers.Where(r => r.BindingId != 0).Select(r => DmabufBinding.FromId(r.BindingId)!).ToList();
            var credit = new Credit();
            foreach (UdpReceiver rx in receivers)
            {
                consumers.Add(new Consumer(rx, o.Payload, credit));
            }

            GcCollections gcStart = GcCollections.Now();
            var clock = Stopwatch.StartNew();
            foreach (Consumer c in consumers)
            {
                c.Start();
            }

            long sent = Send(o, receivers[0].LocalEndpoint, credit, consumers, progress, clock, failures, stop);
            double seconds = clock.Elapsed.TotalSeconds;

            // Everything sent is either received or counted by the kernel as dropped; wait (bounded) for the receivers to catch up.
            var wait = Stopwatch.StartNew();
            while (consumers.Sum(c => c.Received) + receivers.Sum(r => r.GetStats().KernelDrops) < sent && wait.Elapsed < TimeSpan.FromSeconds(10))
            {
                Thread.Sleep(5);
            }

            foreach (Consumer c in consumers)
            {
                c.Stop();
            }

            GcCollections gc = GcCollections.Since(gcStart);
            UdpReceiverStats[] stats = receivers.Select(r => r.GetStats()).ToArray();
            PagePoolStats pool = RunChecks.Total(pools);
            string path = receivers[0].Path.ToString();
            string? reason = receivers[0].FallbackReason;
            string endpoint = receivers[0].LocalEndpoint.ToString();
            int bindingId = receivers[0].BindingId;
            long received = consumers.Sum(c => c.Received);
            long verified = consumers.Sum(c => c.Verified);
            long mismatches = consumers.Sum(c => c.Mismatches);
            long delivered = stats.Sum(s => s.Datagrams);
            long drops = stats.Sum(s => s.KernelDrops);
            long bytes = stats.Sum(s => s.Bytes);
            foreach (Consumer c in consumers)
            {
                if (c.Error is not null)
                {
                    failures.Add($"receiver thread failed: {c.Error.Message}");
                }
            }

            foreach (UdpReceiver rx in receivers)
            {
                rx.Dispose();
            }

            receivers.Clear();
            long inflight = RunChecks.WaitPoolsFreed(pools, TimeSpan.FromSeconds(5));
            long outstanding = bindings.Sum(b => b.Size - b.Avail);
            RunChecks.CheckCommon(failures, mismatches, delivered, received, inflight, outstanding, bindings.All(b => b.IsFreed));
            if (sent != received + drops)
            {
                failures.Add($"{sent} datagrams sent but {received} received + {drops} dropped by the kernel");
            }

            if (verified != received)
            {
                failures.Add($"{received} datagrams received but {verified} verified");
            }

            return new UdpRunResult
            {
                Seconds = seconds,
                Payload = o.Payload,
                Queues = o.Receivers,
                Flows = o.Senders,
                PacketsInjected = sent,
                PacketsDelivered = delivered,
                PacketsReceived = received,
                PacketsVerified = verified,
                PayloadMismatches = mismatches,
                PacketsPerSecond = received / seconds,
                GbitPerSecond = bytes * 8 / seconds / 1e9,
                DropsByReason = drops == 0 ? new Dictionary<string, long>() : new Dictionary<string, long> { ["KernelRxqOverflow"] = drops },
                PoolCounters = pool,
                Collections = gc,
                InflightAfterTeardown = inflight,
                GenPoolOutstandingAfterTeardown = outstanding,
                BindingId = bindingId,
                Path = path,
                FallbackReason = reason,
                Endpoint = endpoint,
                Region = o.Region,
                Gro = o.Gro,
                Gso = o.Gso,
                Coalesced = stats.Sum(s => s.Coalesced),
                KernelDrops = drops,
                Truncated = stats.Sum(s => s.Truncated),
                BufferRingExhausted = stats.Sum(s => s.BufferRingExhausted),
                PerReceiver = stats.Select(s => s.Datagrams).ToArray(),
                Failures = failures,
            };
        }
        finally
        {
            foreach (Consumer c in consumers)
            {
                c.Stop();
            }

            foreach (UdpReceiver rx in receivers)
            {
                rx.Dispose();
            }

            foreach (DmabufRegion r in regions)
            {
                r.Dispose();
            }
        }
    }

    /// <summary>Writes the human-readable summary (the shape of <c>netmem demo</c>'s).</summary>
    public static void PrintSummary(UdpRunResult r, TextWriter w)
    {
        ArgumentNullException.ThrowIfNull(r);
        ArgumentNullException.ThrowIfNull(w);
        CultureInfo c = CultureInfo.InvariantCulture;
        string memory = r.Region ? $"memfd region(s), binding {r.BindingId}" : "system pages";
        w.WriteLine(string.Create(c, $"netmem udp: {r.Endpoint}, path {r.Path}, {r.Queues} receiver(s), {r.Flows} sender(s), {r.Payload} B payload into {memory}, {r.Seconds:F2} s"));
        if (r.FallbackReason is not null)
        {
            w.WriteLine("  fallback    " + r.FallbackReason);
        }

        w.WriteLine(string.Create(c, $"  rate        {r.PacketsPerSecond / 1e6:F3} Mpps   {r.GbitPerSecond:F2} Gbit/s payload (senders and receivers share the machine)"));
        w.WriteLine(string.Create(c, $"  packets     sent {r.PacketsInjected}  delivered {r.PacketsDelivered}  received {r.PacketsReceived}  verified {r.PacketsVerified}  mismatches {r.PayloadMismatches}"));
        RunChecks.PrintDrops(r, w);
        w.WriteLine(string.Create(c, $"  kernel      drops {r.KernelDrops} (SO_RXQ_OVFL)  truncated {r.Truncated}  buffer ring exhausted {r.BufferRingExhausted}  per receiver {string.Join("/", r.PerReceiver)}"));
        if (r.Gro || r.Gso > 1)
        {
            w.WriteLine(string.Create(c, $"  gso/gro     {r.Gso} datagram(s) per send, UDP_GRO {(r.Gro ? "on" : "off")}, {r.Coalesced} coalesced buffer(s)"));
        }

        RunChecks.PrintPoolsAndResult(r, w);
    }

    /// <summary>The result as JSON (snake_case keys, as <c>demo --json</c>).</summary>
    public static string ToJson(UdpRunResult r) => JsonSerializer.Serialize(r, UdpJsonContext.Default.UdpRunResult);

    private static void Validate(UdpRunOptions o)
    {
        if (o.Count < 1 || o.Count > 100_000_000)
        {
            throw new ArgumentException("--count must be 1..100000000.");
        }

        if (o.Payload < 8 || o.Payload > 65507)
        {
            throw new ArgumentException("--payload must be 8..65507 bytes.");
        }

        if (o.Senders < 1 || o.Senders > 64)
        {
            throw new ArgumentException("--senders must be 1..64.");
        }

        if (o.Receivers < 1 || o.Receivers > 64)
        {
            throw new ArgumentException("--receivers must be 1..64.");
        }

        if (o.Window < 1 || o.Window > 65536)
        {
            throw new ArgumentException("--window must be 1..65536.");
        }

        if (o.Gso < 1 || o.Gso > 64)
        {
            throw new ArgumentException("--gso must be 1..64.");
        }

        if (o.Gso > 1 && (long)o.Gso * o.Payload > MaxSendPayload)
        {
            throw new ArgumentException($"--gso {o.Gso} with --payload {o.Payload} makes sends of {(long)o.Gso * o.Payload} bytes; one UDP send carries at most {MaxSendPayload}.");
        }

        if (o.Window < o.Gso)
        {
            throw new ArgumentException("--window must be at least --gso.");
        }

        if (o.Gro && o.Region)
        {
            throw new ArgumentException("--gro needs 128 KiB buffers and a region gives 4 KiB net_iovs: use one or the other.");
        }

        if (o.Region && (o.RegionBytes < (4L << 20) || o.RegionBytes % DmabufRegion.Granule != 0))
        {
            throw new ArgumentException("--region-bytes must be at least 4 MiB and a multiple of 4 KiB.");
        }
    }

    private static long Send(UdpRunOptions o, IPEndPoint target, Credit credit, List<Consumer> consumers, TextWriter progress, Stopwatch clock,
        List<string> failures, CancellationToken stop)
    {
        var threads = new Thread[o.Senders];
        long perSender = o.Count / o.Senders;
        Exception? error = null;
        for (int s = 0; s < o.Senders; s++)
        {
            int sender = s;
            long count = perSender + (s < o.Count % o.Senders ? 1 : 0);
            threads[s] = new Thread(() =>
            {
                try
                {
                    SendFrom(sender, count, o, target, credit, stop);
                }
                catch (Exception e)
                {
                    error = e;
                }
            })
            { IsBackground = true, Name = "netmem-udp-sender" + s.ToString(CultureInfo.InvariantCulture) };
            threads[s].Start();
        }

        TimeSpan nextPrint = TimeSpan.FromSeconds(1);
        while (threads.Any(t => t.IsAlive))
        {
            threads[0].Join(100);
            if (o.Progress && clock.Elapsed >= nextPrint)
            {
                progress.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"[{clock.Elapsed.TotalSeconds,6:F1}s] sent {credit.Sent}  received {consumers.Sum(c => c.Received)}  mismatches {consumers.Sum(c => c.Mismatches)}"));
                nextPrint += TimeSpan.FromSeconds(1);
            }
        }

        if (error is not null)
        {
            failures.Add("sender failed: " + error.Message);
        }

        return credit.Sent;
    }

    private static void SendFrom(int sender, long count, UdpRunOptions o, IPEndPoint target, Credit credit, CancellationToken stop)
    {
        using var socket = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        if (o.Gso > 1)
        {
            socket.SetRawSocketOption(Native.UdpSocketNative.IPPROTO_UDP, Native.UdpSocketNative.UDP_SEGMENT, BitConverter.GetBytes(o.Payload));
        }

        // One send: one datagram, or with GSO up to o.Gso of them back to back, each verifiable alone.
        byte[] payload = new byte[o.Payload * o.Gso];
        ulong seq = (ulong)sender << 40;
        for (long i = 0; i < count && !stop.IsCancellationRequested;)
        {
            int k = (int)Math.Min(o.Gso, count - i);
            for (int d = 0; d < k; d++)
            {
                FrameBuilder.FillSequencePayload(payload.AsSpan(d * o.Payload, o.Payload), seq++);
            }

            if (!credit.WaitForRoom(o.Window - k + 1, TimeSpan.FromSeconds(10)))
            {
                throw new TimeoutException($"the receivers consumed nothing for 10 s ({credit.Sent} sent, {credit.Consumed} consumed)");
            }

            credit.CountSent(k);
            socket.SendTo(payload.AsSpan(0, k * o.Payload), SocketFlags.None, target);
            i += k;
        }
    }

    /// <summary>Datagrams sent and consumed, shared by senders and receiver threads.</summary>
    private sealed class Credit
    {
        private long _sent;
        private long _consumed;

        public long Sent => Volatile.Read(ref _sent);

        public long Consumed => Volatile.Read(ref _consumed);

        public void CountSent(int n) => Interlocked.Add(ref _sent, n);

        public void CountConsumed(int n) => Interlocked.Add(ref _consumed, n);

        public bool WaitForRoom(int window, TimeSpan timeout)
        {
            if (Sent - Consumed < window)
            {
                return true;
            }

            var sw = Stopwatch.StartNew();
            SpinWait spin = default;
            while (Sent - Consumed >= window)
            {
                if (sw.Elapsed > timeout)
                {
                    return false;
                }

                spin.SpinOnce(sleep1Threshold: 20);
            }

            return true;
        }
    }

    /// <summary>One receiver's thread: receive a batch, verify every payload, return the batch.</summary>
    private sealed class Consumer
    {
        private readonly UdpReceiver _rx;
        private readonly int _payload;
        private readonly Credit _credit;
        private readonly Thread _thread;
        private volatile bool _stop;
        private long _received;
        private long _verified;
        private long _mismatches;

        public Consumer(UdpReceiver rx, int payload, Credit credit)
        {
            _rx = rx;
            _payload = payload;
            _credit = credit;
            _thread = new Thread(Run) { IsBackground = true, Name = "netmem-udp-" + rx.Name };
        }

        public long Received => Volatile.Read(ref _received);

        public long Verified => Volatile.Read(ref _verified);

        public long Mismatches => Volatile.Read(ref _mismatches);

        public Exception? Error { get; private set; }

        public void Start() => _thread.Start();

        public void Stop()
        {
            _stop = true;
            if (_thread.IsAlive)
            {
                _thread.Join();
            }
        }

        private void Run()
        {
            var batch = new UdpDatagram[Batch];
            try
            {
                while (!_stop)
                {
                    int n = _rx.Receive(batch, 20);
                    for (int i = 0; i < n; i++)
                    {
                        ReadOnlySpan<byte> p = _rx.GetPayload(batch[i]);
                        if (p.Length == _payload && !batch[i].Truncated && FrameBuilder.VerifySequencePayload(p, out _))
                        {
                            _verified++;
                        }
                        else
                        {
                            _mismatches++;
                        }
                    }

                    _rx.Return(batch.AsSpan(0, n));
                    Volatile.Write(ref _received, _received + n);
                    _credit.CountConsumed(n);
                }
            }
            catch (Exception e)
            {
                // A receiver thread reports its failure in the result; it never escapes.
                Error = e;
            }
        }
    }
}
