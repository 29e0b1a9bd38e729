using Netmem.Tool.Relay;
using Xunit;

namespace Netmem.Tests.Relay;

/// <summary>
/// <c>netmem relay</c>'s engine end to end on SimNic: every datagram generated is relayed from
/// the region, verified at the far end, and accounted for; nothing is left in flight, and the
/// rx binding gets every net_iov back.
/// </summary>
public sealed class RelayRunnerTests(ITestOutputHelper output)
{
    private static RelayRunResult Run(long count, int payload)
    {
        var o = new RelayRunOptions { Count = count, Payload = payload, Seconds = 600 };
        return RelayRunner.Run(o, TextWriter.Null, TestContext.Current.CancellationToken);
    }

    private void Print(RelayRunResult r) => output.WriteLine(RelayRunAssert.Summary(r));

    [Fact]
    public void A_run_of_20000_datagrams_relays_and_verifies_every_one_and_leaves_nothing_in_flight()
    {
        RelayRunResult r = Run(20_000, 1400);
        Print(r);

        RelayRunAssert.AllRelayed(r, 20_000);
        Assert.Equal(20_000L * 1400, r.FarEndBytesCopied);
    }

    [Fact]
    public void Datagrams_larger_than_a_net_iov_are_relayed_as_one_send_of_all_their_fragments()
    {
        RelayRunResult r = Run(2_000, 8972);
        Print(r);

        Assert.True(r.Ok, string.Join("; ", r.Failures));
        Assert.Equal(2_000, r.MultiFragmentDatagrams);
        Assert.Equal(3 * 2_000, r.FragmentsReceived);
        Assert.Equal(2_000, r.PacketsRelayed);
        Assert.Equal(2_000, r.PacketsVerified);
        Assert.Equal(0, r.TokensOutstanding);
        Assert.Equal(0, r.CompletionsOutstanding);
        Assert.Equal(0, r.RelayBytesCopied);
        Assert.Equal(0, r.GenPoolOutstandingAfterTeardown);
    }

    [Theory]
    [InlineData(0, "--payload must be 1..8972")]
    [InlineData(8973, "--payload must be 1..8972")]
    public void A_payload_out_of_range_is_refused_before_anything_is_created(int payload, string message)
    {
        var e = Assert.Throws<ArgumentException>(() =>
            RelayRunner.Run(new RelayRunOptions { Payload = payload }, TextWriter.Null, TestContext.Current.CancellationToken));
        Assert.StartsWith(message, e.Message, StringComparison.Ordinal);
    }
}
