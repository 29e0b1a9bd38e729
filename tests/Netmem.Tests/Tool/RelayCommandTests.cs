using System.Text.Json;
using Netmem.Tests.Support;
using Netmem.Tool.Cli;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary><c>netmem relay</c> from the command line.</summary>
public sealed class RelayCommandTests
{
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

    [Fact]
    public async Task Relay_on_xdp_json_reports_the_device_path_the_copies_and_nothing_outstanding()
    {
        Requires.AfXdp();

        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("relay", "--driver", "xdp", "--count", "2000", "--payload", "1472", "--json");

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement r = doc.RootElement;
        Assert.True(r.GetProperty("ok").GetBoolean());
        Assert.Equal("xdp", r.GetProperty("driver").GetString());
        string path = r.GetProperty("device_path").GetString()!;
        Assert.StartsWith("nmxdprl0 (veth), AF_XDP ", path, StringComparison.Ordinal);
        Assert.Equal(2000, r.GetProperty("packets_relayed").GetInt64());
        Assert.Equal(2000, r.GetProperty("packets_verified").GetInt64());
        Assert.Equal(2000, r.GetProperty("zero_copy_completed").GetInt64());
        Assert.Equal(0, r.GetProperty("packets_lost").GetInt64());
        Assert.Equal(0, r.GetProperty("packets_dropped").GetInt64());
        Assert.Equal(0, r.GetProperty("relay_bytes_copied").GetInt64());
        bool sg = path.Contains("tx multi-buffer (XDP_USE_SG", StringComparison.Ordinal);
        Assert.Equal(sg ? 0 : 2000L * 1472, r.GetProperty("driver_bytes_copied").GetInt64());
        Assert.Equal(sg ? 0 : 2000, r.GetProperty("zero_copy_copied").GetInt64());
        Assert.Equal(0, r.GetProperty("completions_outstanding").GetInt64());
        Assert.Equal(0, r.GetProperty("tokens_outstanding").GetInt64());
    }

    [Theory]
    [InlineData("simnic", "(DMA; simulated by the CPU on SimNic)")]
    [InlineData("tun", "(the kernel, copying into the region on read and out of it on writev)")]
    [InlineData("xdp", "(the kernel, copying frames into and out of the UMEM (AF_XDP copy mode))")]
    public async Task Relay_verifies_every_datagram_at_the_far_end_copies_nothing_on_the_relay_path_and_exits_0(string driver, string deviceBytesMovedBy)
    {
        RequireDriver(driver);

        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("relay", "--driver", driver, "--count", "3000");

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        Assert.Contains($"netmem relay: {driver},", stdout, StringComparison.Ordinal);
        Assert.Contains("generated 3000  relayed 3000  verified 3000  mismatches 0  dropped 0  lost 0", stdout, StringComparison.Ordinal);
        Assert.Contains("copied      relay 0 B", stdout, StringComparison.Ordinal);
        Assert.Contains(deviceBytesMovedBy, stdout, StringComparison.Ordinal);
        Assert.Contains("at end      completions outstanding 0  tokens outstanding 0", stdout, StringComparison.Ordinal);
        Assert.Contains("teardown    inflight 0  genpool outstanding 0 bytes", stdout, StringComparison.Ordinal);
        Assert.Contains("result      OK", stdout, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("tun")]
    [InlineData("xdp")]
    public async Task Relay_on_a_kernel_driver_with_a_payload_over_its_mtu_is_a_usage_error(string driver)
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("relay", "--driver", driver, "--payload", "1473", "--count", "10");

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Empty(stdout);
        Assert.StartsWith($"netmem: --payload must be 1..1472 bytes on {driver}", stderr.Trim(), StringComparison.Ordinal);
    }

    private static void RequireDriver(string driver)
    {
        if (driver == "xdp")
        {
            Requires.AfXdp();
        }
        else if (driver == "tun")
        {
            Requires.NetNamespaces();
        }
    }
}
