using Netmem.Native;
using Netmem.Tool.TunDemo;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary><c>netmem tun</c> end to end: real kernel packets, verified through the region. Needs root.</summary>
public sealed class TunRunnerTests(ITestOutputHelper output)
{
    [Fact]
    public void Tun_run_of_5000_datagrams_verifies_every_one_matches_the_kernel_counters_and_leaks_nothing()
    {
        Requires.NetNamespaces();

        const int Count = 5000;
        using var log = new StringWriter();
        TunRunResult r = TunRunner.Run(new TunRunOptions { Count = Count, Payload = 1400, Progress = false }, log, CancellationToken.None);
        TunRunner.PrintSummary(r, log);
        output.WriteLine(log.ToString());

        Assert.True(r.Ok, string.Join("; ", r.Failures));
        Assert.Equal(Count, r.PacketsInjected);
        Assert.Equal(Count, r.PacketsVerified);
        Assert.Equal(0, r.PayloadMismatches);
        Assert.Equal((ulong)(r.PacketsDelivered + r.PacketsDropped), r.KernelTxPackets);
        Assert.Equal(0UL, r.KernelTxDropped);
        Assert.Equal(0, r.InflightAfterTeardown);
        Assert.Equal(0, r.GenPoolOutstandingAfterTeardown);
    }

    [Fact]
    public void Tun_run_with_several_queues_binds_them_all_and_verifies_every_datagram()
    {
        Requires.NetNamespaces();

        using var log = new StringWriter();
        TunRunResult r = TunRunner.Run(new TunRunOptions { Count = 2000, Payload = 64, Queues = 2, Progress = false }, log, CancellationToken.None);
        TunRunner.PrintSummary(r, log);
        output.WriteLine(log.ToString());

        Assert.True(r.Ok, string.Join("; ", r.Failures));
        Assert.Equal(2, r.Flows);
        Assert.Equal(2000, r.PacketsVerified);
        Assert.Equal((ulong)(r.PacketsDelivered + r.PacketsDropped), r.KernelTxPackets);
        Assert.Equal(0, r.InflightAfterTeardown);
    }

    [Fact]
    public void Tun_run_refuses_a_payload_larger_than_the_mtu_allows()
    {
        var e = Assert.Throws<ArgumentException>(() => TunRunner.Run(new TunRunOptions { Payload = 1473 }, TextWriter.Null, CancellationToken.None));
        Assert.Contains("--payload must be 1..1472", e.Message, StringComparison.Ordinal);
    }
}
