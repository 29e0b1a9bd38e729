using Netmem.Tool.Relay;
using Xunit;

namespace Netmem.Tests.Relay;

/// <summary>The checks every complete <c>netmem relay</c> run must pass, whatever the driver.</summary>
internal static class RelayRunAssert
{
    /// <summary>
    /// The run is OK and every one of <paramref name="count"/> datagrams was received, relayed,
    /// completed, delivered and verified; nothing dropped, lost, held, copied on the relay's path
    /// or leaked.
    /// </summary>
    public static void AllRelayed(RelayRunResult r, long count)
    {
        Assert.True(r.Ok, string.Join("; ", r.Failures));
        Assert.Equal(count, r.PacketsInjected);
        Assert.Equal(count, r.PacketsRelayReceived);
        Assert.Equal(count, r.PacketsRelayed);
        Assert.Equal(count, r.ZeroCopyCompleted);
        Assert.Equal(0, r.ZeroCopyCancelled);
        Assert.Equal(count, r.PacketsDelivered);
        Assert.Equal(count, r.PacketsReceived);
        Assert.Equal(count, r.PacketsVerified);
        Assert.Equal(0, r.PayloadMismatches);
        Assert.Equal(0, r.PacketsDropped);
        Assert.Equal(0, r.PacketsLost);
        Assert.Empty(r.DropsByReason);
        Assert.Equal(0, r.CompletionsOutstanding);
        Assert.Equal(0, r.TokensOutstanding);
        Assert.Equal(0, r.RelayBytesCopied);
        Assert.Equal(0, r.InflightAfterTeardown);
        Assert.Equal(0, r.GenPoolOutstandingAfterTeardown);
        Assert.NotEqual(r.BindingId, r.TxBindingId);
    }

    /// <summary>The human-readable summary of <paramref name="r"/>.</summary>
    public static string Summary(RelayRunResult r)
    {
        var w = new StringWriter();
        RelayRunner.PrintSummary(r, w);
        return w.ToString();
    }
}
