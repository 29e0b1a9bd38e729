using System.Diagnostics;
using System.Globalization;

namespace Netmem.Tool.Demo;

/// <summary>What <c>netmem demo</c> and <c>netmem tun</c> share: teardown waits, pool totals and the summary's common lines.</summary>
internal static class RunChecks
{
    /// <summary>Waits (bounded) until every pool has freed itself; returns what is still in flight across them.</summary>
    public static long WaitPoolsFreed(IReadOnlyCollection<PagePool> pools, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (pools.Any(p => !p.IsFreed) && sw.Elapsed < timeout)
        {
            Thread.Sleep(5);
        }

        return pools.Sum(p => p.GetStats().Inflight);
    }

    /// <summary>Waits (bounded) until the consumers have received <paramref name="delivered"/> datagrams.</summary>
    public static void WaitReceived(IReadOnlyCollection<FlowConsumer> consumers, long delivered, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (consumers.Sum(c => c.Received) < delivered && sw.Elapsed < timeout)
        {
            Thread.Sleep(5);
        }
    }

    /// <summary>Spins (yielding, then sleeping) until <paramref name="done"/> holds; false when <paramref name="timeout"/> passed first.</summary>
    public static bool WaitUntil(Func<bool> done, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        SpinWait spin = default;
        while (!done())
        {
            if (sw.Elapsed > timeout)
            {
                return false;
            }

            spin.SpinOnce(sleep1Threshold: 20);
        }

        return true;
    }

    /// <summary>Waits until a driver's packet count (<paramref name="packetsSeen"/>) stops moving for 50 ms (its queue is empty), at most 3 s.</summary>
    public static void WaitQuiet(Func<long> packetsSeen)
    {
        var total = Stopwatch.StartNew();
        var still = Stopwatch.StartNew();
        long last = packetsSeen();
        while (still.ElapsedMilliseconds < 50 && total.ElapsedMilliseconds < 3000)
        {
            Thread.Sleep(5);
            long now = packetsSeen();
            if (now != last)
            {
                last = now;
                still.Restart();
            }
        }
    }

    /// <summary>The counters of several pools added up.</summary>
    public static PagePoolStats Total(IEnumerable<PagePool> pools) =>
        pools.Aggregate(default(PagePoolStats), (sum, p) => sum + p.GetStats());

    /// <summary>The failures every run checks: payloads, delivery, leaks.</summary>
    public static void CheckCommon(List<string> failures, long mismatches, long delivered, long received, long inflight, long outstanding, bool bindingsFreed)
    {
        if (mismatches != 0)
        {
            failures.Add($"{mismatches} payloads did not match what was injected");
        }

        if (received != delivered)
        {
            failures.Add($"{delivered} datagrams delivered but {received} received");
        }

        if (inflight != 0)
        {
            failures.Add($"{inflight} netmems still in flight after teardown (leak)");
        }

        if (outstanding != 0 || !bindingsFreed)
        {
            failures.Add($"dmabuf bindings have {outstanding} bytes outstanding after teardown (leak)");
        }
    }

    /// <summary>The drops line.</summary>
    public static void PrintDrops(DemoResult r, TextWriter w)
    {
        string drops = r.DropsByReason.Count == 0 ? "none" : string.Join("  ", r.DropsByReason.Select(kv => $"{kv.Key} {kv.Value}"));
        w.WriteLine($"  drops       {drops}");
    }

    /// <summary>The pool, GC, teardown and result lines.</summary>
    public static void PrintPoolsAndResult(DemoResult r, TextWriter w)
    {
        CultureInfo c = CultureInfo.InvariantCulture;
        w.WriteLine(string.Create(c, $"  alloc       fast {r.AllocFast}  refill {r.AllocRefill}  slow {r.AllocSlow}"));
        w.WriteLine(string.Create(c, $"  recycle     cached {r.RecycleCached}  ring {r.RecycleRing}  ring_full {r.RecycleRingFull}"));
        w.WriteLine(string.Create(c, $"  gc          gen0 {r.Gen0Collections}  gen1 {r.Gen1Collections}  gen2 {r.Gen2Collections} (during traffic)"));
        if (r.Rebinds > 0)
        {
            w.WriteLine(string.Create(c, $"  rebinds     {r.Rebinds} (queue restarts under traffic)"));
        }

        w.WriteLine(string.Create(c, $"  teardown    inflight {r.InflightAfterTeardown}  genpool outstanding {r.GenPoolOutstandingAfterTeardown} bytes"));
        w.WriteLine(r.Ok ? "  result      OK" : "  result      FAILED: " + string.Join("; ", r.Failures));
    }
}
