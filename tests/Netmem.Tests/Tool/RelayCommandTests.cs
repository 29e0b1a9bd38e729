using System.Text.Json;
using Netmem.Tool.Cli;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary><c>netmem relay</c> from the command line.</summary>
public sealed class RelayCommandTests
{
    [Fact]
    public async Task Relay_on_simnic_verifies_every_datagram_copies_nothing_and_exits_0()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("relay", "--count", "3000");

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        Assert.Contains("generated 3000  relayed 3000  verified 3000  mismatches 0  dropped 0  lost 0", stdout, StringComparison.Ordinal);
        Assert.Contains("copied      relay 0 B", stdout, StringComparison.Ordinal);
        Assert.Contains("at end      completions outstanding 0  tokens outstanding 0", stdout, StringComparison.Ordinal);
        Assert.Contains("teardown    inflight 0  genpool outstanding 0 bytes", stdout, StringComparison.Ordinal);
        Assert.Contains("result      OK", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Relay_json_reports_the_relay_counters_in_snake_case()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("relay", "--count", "2000", "--payload", "6000", "--json");

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement r = doc.RootElement;
        Assert.True(r.GetProperty("ok").GetBoolean());
        Assert.Equal("simnic", r.GetProperty("driver").GetString());
        Assert.Equal(2000, r.GetProperty("packets_relayed").GetInt64());
        Assert.Equal(2000, r.GetProperty("packets_verified").GetInt64());
        Assert.Equal(2000, r.GetProperty("multi_fragment_datagrams").GetInt64());
        Assert.Equal(0, r.GetProperty("packets_lost").GetInt64());
        Assert.Equal(0, r.GetProperty("relay_bytes_copied").GetInt64());
        Assert.Equal(0, r.GetProperty("completions_outstanding").GetInt64());
        Assert.Equal(0, r.GetProperty("tokens_outstanding").GetInt64());
    }

    [Theory]
    [InlineData("tun", "netmem: relay cannot run here: TunNic cannot transmit yet")]
    [InlineData("xdp", "netmem: relay cannot run here: XdpNic cannot transmit from a dmabuf yet")]
    public async Task Relay_on_a_driver_that_cannot_transmit_yet_is_a_one_line_error(string driver, string message)
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("relay", "--driver", driver, "--count", "10");

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Empty(stdout);
        Assert.StartsWith(message, stderr.Trim(), StringComparison.Ordinal);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
