using System.Text.Json;
using Netmem.Drivers.Udp;
using Netmem.Tests.Support;
using Netmem.Tool.UdpDemo;
using Xunit;

namespace Netmem.Tests.UdpRx;

/// <summary>The engine of <c>netmem udp</c>: small runs on each path and option, checked through the result it reports.</summary>
public sealed class UdpRunnerTests
{
    [Theory]
    [InlineData(UdpReceivePath.IoUring, 1, false, false)]
    [InlineData(UdpReceivePath.RecvMmsg, 1, false, false)]
    [InlineData(UdpReceivePath.IoUring, 2, true, false)]
    [InlineData(UdpReceivePath.RecvMmsg, 2, false, true)]
    public void A_run_verifies_every_payload_and_leaves_nothing_in_flight(UdpReceivePath path, int receivers, bool region, bool ipv6)
    {
        if (path == UdpReceivePath.IoUring)
        {
            Requires.IoUring();
        }

        var o = new UdpRunOptions { Count = 20_000, Payload = 512, Senders = 2, Receivers = receivers, Path = path, Region = region, IPv6 = ipv6, Progress = false };

        UdpRunResult r = UdpRunner.Run(o, TextWriter.Null, TestContext.Current.CancellationToken);

        Assert.True(r.Ok, string.Join("; ", r.Failures));
        Assert.Equal(path.ToString(), r.Path);
        Assert.Equal(20_000, r.PacketsInjected);
        Assert.Equal(20_000, r.PacketsVerified + r.KernelDrops);
        Assert.Equal(0, r.PayloadMismatches);
        Assert.Equal(0, r.InflightAfterTeardown);
        Assert.Equal(0, r.GenPoolOutstandingAfterTeardown);
        Assert.Equal(receivers, r.PerReceiver.Count);
        Assert.Equal(r.PacketsDelivered, r.PerReceiver.Sum());
        Assert.Equal(region, r.BindingId != 0);
        Assert.StartsWith(ipv6 ? "[::1]:" : "127.0.0.1:", r.Endpoint, StringComparison.Ordinal);
    }

    [Fact]
    public void The_summary_has_the_demo_shape_and_the_json_carries_the_path_and_the_kernel_drops()
    {
        var o = new UdpRunOptions { Count = 2_000, Payload = 64, Senders = 1, Path = UdpReceivePath.RecvMmsg, Progress = false };
        UdpRunResult r = UdpRunner.Run(o, TextWriter.Null, TestContext.Current.CancellationToken);
        var text = new StringWriter();

        UdpRunner.PrintSummary(r, text);
        using JsonDocument json = JsonDocument.Parse(UdpRunner.ToJson(r));

        string summary = text.ToString();
        Assert.Contains("netmem udp: 127.0.0.1:", summary, StringComparison.Ordinal);
        Assert.Contains("path RecvMmsg", summary, StringComparison.Ordinal);
        Assert.Contains("  packets     sent 2000", summary, StringComparison.Ordinal);
        Assert.Contains("  teardown    inflight 0", summary, StringComparison.Ordinal);
        Assert.Contains("  result      OK", summary, StringComparison.Ordinal);
        Assert.Equal("RecvMmsg", json.RootElement.GetProperty("path").GetString());
        Assert.Equal(0, json.RootElement.GetProperty("kernel_drops").GetInt64());
        Assert.Equal(2000, json.RootElement.GetProperty("packets_verified").GetInt64());
        Assert.True(json.RootElement.GetProperty("ok").GetBoolean());
    }

    [Theory]
    [InlineData(0, 1400, "--count")]
    [InlineData(10, 4, "--payload")]
    public void Bad_options_are_refused_with_the_option_named(int count, int payload, string option)
    {
        var e = Assert.Throws<ArgumentException>(() =>
            UdpRunner.Run(new UdpRunOptions { Count = count, Payload = payload, Progress = false }, TextWriter.Null, TestContext.Current.CancellationToken));
        Assert.Contains(option, e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(UdpReceivePath.IoUring)]
    [InlineData(UdpReceivePath.RecvMmsg)]
    public void Gso_senders_into_gro_receivers_arrive_coalesced_and_every_datagram_is_verified(UdpReceivePath path)
    {
        if (path == UdpReceivePath.IoUring)
        {
            Requires.IoUring();
        }

        var o = new UdpRunOptions { Count = 20_000, Payload = 100, Senders = 2, Path = path, Gso = 64, Gro = true, Progress = false };

        UdpRunResult r = UdpRunner.Run(o, TextWriter.Null, TestContext.Current.CancellationToken);
        var text = new StringWriter();
        UdpRunner.PrintSummary(r, text);
        using JsonDocument json = JsonDocument.Parse(UdpRunner.ToJson(r));

        Assert.True(r.Ok, string.Join("; ", r.Failures));
        Assert.Equal(20_000, r.PacketsVerified);
        Assert.Equal(0, r.PayloadMismatches);
        Assert.Equal(0, r.InflightAfterTeardown);
        Assert.True(r.Coalesced > 0, "no buffer was coalesced");
        Assert.Contains("  gso/gro     64 datagram(s) per send, UDP_GRO on", text.ToString(), StringComparison.Ordinal);
        Assert.True(json.RootElement.GetProperty("gro").GetBoolean());
        Assert.Equal(64, json.RootElement.GetProperty("gso").GetInt32());
        Assert.Equal(r.Coalesced, json.RootElement.GetProperty("coalesced").GetInt64());
    }

    [Theory]
    [InlineData(64, 1400, false, "--gso")]
    [InlineData(2, 100, true, "--gro")]
    public void Gso_and_gro_options_that_cannot_work_are_refused_with_the_option_named(int gso, int payload, bool region, string option)
    {
        var e = Assert.Throws<ArgumentException>(() => UdpRunner.Run(
            new UdpRunOptions { Gso = gso, Payload = payload, Gro = true, Region = region, Progress = false }, TextWriter.Null, TestContext.Current.CancellationToken));
        Assert.Contains(option, e.Message, StringComparison.Ordinal);
    }
}
