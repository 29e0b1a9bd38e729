using Netmem.Tests.Support;
using Netmem.Tool.Relay;
using Xunit;

namespace Netmem.Tests.Relay;

/// <summary>
/// <c>netmem relay</c>'s engine on a TunNic in a private network namespace: a kernel UDP socket
/// sends every datagram into the TUN, the relay receives it into the bound region and sends it
/// from the same fragments back through the TUN, and a second kernel UDP socket verifies it.
/// Needs root.
/// </summary>
public sealed class TunRelayRunnerTests(ITestOutputHelper output)
{
    [Fact]
    public void A_tunnic_run_of_20000_datagrams_relays_and_verifies_every_one_through_the_kernel_and_leaves_nothing_in_flight()
    {
        Requires.NetNamespaces();

        var o = new RelayRunOptions { Driver = RelayDriver.Tun, Count = 20_000, Payload = 1400, Seconds = 600 };
        RelayRunResult r = RelayRunner.Run(o, TextWriter.Null, TestContext.Current.CancellationToken);
        output.WriteLine(RelayRunAssert.Summary(r));

        RelayRunAssert.AllRelayed(r, 20_000);
        Assert.Equal("tun", r.Driver);
        Assert.Equal(0, r.ZeroCopyCopied);
        Assert.Equal(0, r.DriverBytesCopied);
    }

    [Fact]
    public void A_payload_over_the_tun_mtu_is_refused_before_anything_is_created()
    {
        var e = Assert.Throws<ArgumentException>(() =>
            RelayRunner.Run(new RelayRunOptions { Driver = RelayDriver.Tun, Payload = 1473 }, TextWriter.Null, TestContext.Current.CancellationToken));
        Assert.StartsWith("--payload must be 1..1472 bytes on tun", e.Message, StringComparison.Ordinal);
    }
}
