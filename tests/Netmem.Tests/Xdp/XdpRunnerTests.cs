using Netmem.Native;
using Netmem.Tests.Support;
using Netmem.Tool.XdpDemo;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>The engine of <c>netmem xdp</c> end to end: its own namespaces and veth pair, verified through the region. Needs root.</summary>
public sealed class XdpRunnerTests(ITestOutputHelper output)
{
    [Fact]
    public void Xdp_run_of_5000_datagrams_verifies_every_one_matches_the_kernel_counters_and_removes_what_it_created()
    {
        Requires.AfXdp();

        const int Count = 5000;
        using var log = new StringWriter();
        XdpRunResult r = XdpRunner.Run(new XdpRunOptions { Count = Count, Payload = 1400, Progress = false }, log, CancellationToken.None);
        XdpRunner.PrintSummary(r, log);
        output.WriteLine(log.ToString());

        Assert.True(r.Ok, string.Join("; ", r.Failures));
        Assert.Equal(Count, r.PacketsVerified);
        Assert.Equal(0, r.PayloadMismatches);
        Assert.Equal(r.KernelPeerTxPackets, (ulong)(r.PacketsDelivered + r.PacketsDropped) + r.XskRxDropped + r.XskRxRingFull);
        Assert.Contains(r.XskMode, new[] { "copy", "zero-copy" });
        Assert.Contains(r.XdpMode, new[] { "driver", "generic" });
        Assert.Equal(0, r.InflightAfterTeardown);
        Assert.Equal(0, r.GenPoolOutstandingAfterTeardown);
        string[] namespacesAfter = Directory.Exists(NetNamespace.NetnsDirectory) ? Directory.GetFiles(NetNamespace.NetnsDirectory) : [];
        Assert.DoesNotContain(namespacesAfter, n => n.Contains($"{XdpRunner.NamespacePrefix}-{Environment.ProcessId}-", StringComparison.Ordinal));
    }

    [Fact]
    public void Xdp_run_refuses_an_mtu_whose_frames_do_not_fit_a_chunk()
    {
        var e = Assert.Throws<ArgumentException>(() => XdpRunner.Run(new XdpRunOptions { Mtu = 4000 }, TextWriter.Null, CancellationToken.None));
        Assert.Contains("--mtu must be 1280..3000", e.Message, StringComparison.Ordinal);
    }
}
