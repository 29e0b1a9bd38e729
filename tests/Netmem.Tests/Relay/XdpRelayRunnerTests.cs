using Netmem.Native;
using Netmem.Tests.Support;
using Netmem.Tool.Relay;
using Xunit;

namespace Netmem.Tests.Relay;

/// <summary>
/// <c>netmem relay</c>'s engine on an XdpNic over a veth pair between two private namespaces: a
/// kernel UDP socket in the peer namespace sends every datagram to the device end, the relay
/// receives it through queue 0's AF_XDP socket into the bound region (the UMEM) and sends it from
/// the same fragments back out through the same socket's tx ring, and a second kernel UDP socket
/// in the peer namespace verifies it. Needs root.
/// </summary>
public sealed class XdpRelayRunnerTests(ITestOutputHelper output)
{
    private const int Payload = 1400;

    [Fact]
    public void An_xdp_run_of_20000_datagrams_relays_and_verifies_every_one_loses_nothing_and_leaves_nothing_in_flight_or_behind()
    {
        Requires.AfXdp();

        const int Count = 20_000;
        RelayRunResult r = Run(new RelayRunOptions { Driver = RelayDriver.Xdp, Count = Count, Payload = Payload, Seconds = 600 });

        RelayRunAssert.AllRelayed(r, Count);
        Assert.Equal("xdp", r.Driver);

        // With XDP_USE_SG (the veth's kernel allows it) each payload goes out from its rx chunk:
        // nothing copied by the relay or the driver. Were it refused, the copy would be reported.
        bool sg = r.DevicePath!.Contains("tx multi-buffer (XDP_USE_SG", StringComparison.Ordinal);
        Assert.Equal(sg ? 0 : Count, r.ZeroCopyCopied);
        Assert.Equal(sg ? 0 : (long)Count * Payload, r.DriverBytesCopied);
        AssertNamespacesRemoved();
    }

    [Fact]
    public void Without_multi_buffer_the_driver_copies_each_payload_and_the_run_reports_those_bytes_as_the_drivers_copy()
    {
        Requires.AfXdp();

        const int Count = 3000;
        var o = new RelayRunOptions { Driver = RelayDriver.Xdp, Count = Count, Payload = Payload, Seconds = 600 };
        RelayRunResult r = RelayRunner.RunOn(new XdpRelayRig(Count, txMultiBuffer: false), o, TextWriter.Null, TestContext.Current.CancellationToken);
        Print(r);

        RelayRunAssert.AllRelayed(r, Count);
        Assert.Contains("tx without multi-buffer", r.DevicePath, StringComparison.Ordinal);
        Assert.Equal(Count, r.ZeroCopyCopied);
        Assert.Equal((long)Count * Payload, r.DriverBytesCopied);
        Assert.Contains($"copied      relay 0 B  driver {(long)Count * Payload} B (the driver's copy fallback", RelayRunAssert.Summary(r), StringComparison.Ordinal);
        AssertNamespacesRemoved();
    }

    [Fact]
    public void A_run_cancelled_while_generating_verifies_what_was_generated_and_removes_its_namespaces()
    {
        Requires.AfXdp();

        // The first progress line (after a second of traffic) cancels, as Ctrl+C does.
        using var cancel = new CancellationTokenSource();
        using var progress = new CancelOnFirstLine(cancel);
        RelayRunResult r = RelayRunner.Run(new RelayRunOptions { Driver = RelayDriver.Xdp, Payload = 200, Seconds = 600, Progress = true }, progress, cancel.Token);
        Print(r);

        Assert.True(progress.Lines > 0);
        Assert.True(r.Ok, string.Join("; ", r.Failures));
        Assert.True(r.PacketsInjected > 0);
        Assert.Equal(r.PacketsInjected, r.PacketsVerified);
        Assert.Equal(0, r.PacketsLost);
        Assert.Equal(0, r.CompletionsOutstanding);
        Assert.Equal(0, r.TokensOutstanding);
        AssertNamespacesRemoved();
    }

    [Fact]
    public void A_payload_over_the_veth_mtu_is_refused_before_anything_is_created()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            RelayRunner.Run(new RelayRunOptions { Driver = RelayDriver.Xdp, Payload = 1473 }, TextWriter.Null, TestContext.Current.CancellationToken));
        Assert.StartsWith("--payload must be 1..1472 bytes on xdp", e.Message, StringComparison.Ordinal);
    }

    private RelayRunResult Run(RelayRunOptions o)
    {
        RelayRunResult r = RelayRunner.Run(o, TextWriter.Null, TestContext.Current.CancellationToken);
        Print(r);
        return r;
    }

    private void Print(RelayRunResult r) => output.WriteLine(RelayRunAssert.Summary(r));

    /// <summary>No namespace this process's relay runs created is left in <c>/run/netns</c>.</summary>
    private static void AssertNamespacesRemoved()
    {
        string[] left = Directory.Exists(NetNamespace.NetnsDirectory) ? Directory.GetFiles(NetNamespace.NetnsDirectory) : [];
        Assert.DoesNotContain(left, n => n.Contains(XdpRelayRig.NamespacePrefix, StringComparison.Ordinal) && n.Contains($"-{Environment.ProcessId}-", StringComparison.Ordinal));
    }

    /// <summary>A progress writer that cancels the run at its first line.</summary>
    private sealed class CancelOnFirstLine(CancellationTokenSource cancel) : StringWriter
    {
        public int Lines { get; private set; }

        public override void WriteLine(string? value)
        {
            Lines++;
            cancel.Cancel();
        }
    }
}
