using System.Text.Json;
using Netmem.Native;
using Netmem.Tool.Cli;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary><c>netmem tun</c> from the command line. Needs root; otherwise it must say why it cannot run.</summary>
public sealed class TunCommandTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Tun_sends_through_the_kernel_verifies_every_payload_and_exits_0()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("tun", "--count", "3000", "--payload", "1000");
        if (!NetNamespace.IsSupported)
        {
            output.WriteLine("SKIPPED (not supported here): " + NetNamespace.UnsupportedReason);
            Assert.Equal(ExitCodes.Failure, code);
            Assert.Contains("tun cannot run here", stderr, StringComparison.Ordinal);
            return;
        }

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        Assert.Contains("sent 3000  delivered 3000  received 3000  verified 3000  mismatches 0", stdout, StringComparison.Ordinal);
        Assert.Contains("kernel      tx_packets", stdout, StringComparison.Ordinal);
        Assert.Contains("teardown    inflight 0  genpool outstanding 0 bytes", stdout, StringComparison.Ordinal);
        Assert.Contains("result      OK", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Tun_json_has_the_kernel_counters_beside_ours()
    {
        Requires.NetNamespaces();

        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("tun", "--count", "2000", "--json");

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement r = doc.RootElement;
        Assert.True(r.GetProperty("ok").GetBoolean());
        Assert.Equal(2000, r.GetProperty("packets_verified").GetInt64());
        long drops = r.GetProperty("drops_by_reason").EnumerateObject().Sum(p => p.Value.GetInt64());
        Assert.Equal(r.GetProperty("packets_delivered").GetInt64() + drops, r.GetProperty("kernel_tx_packets").GetInt64());
    }

    [Fact]
    public async Task A_dev_net_tun_that_is_not_a_TUN_device_is_a_clear_one_line_error()
    {
        Requires.NetNamespaces();
        if (!File.Exists("/usr/bin/unshare"))
        {
            Requires.Unmet("needs util-linux's unshare for a private mount namespace");
        }

        // In a private mount namespace of its own, /dev/null stands in for /dev/net/tun: it opens,
        // but the TUN ioctl fails with ENOTTY.
        (int code, string stdout, string stderr) = await ToolProcess.RunProgramAsync(
            "/usr/bin/unshare",
            ["-m", "sh", "-c", "mount --bind /dev/null /dev/net/tun && exec \"$0\" \"$@\"", ToolProcess.DotnetHost, ToolProcess.ToolDll, "tun", "--count", "10"],
            null,
            ToolProcess.Timeout);

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Empty(stdout);
        Assert.Equal(
            "netmem: tun: /dev/net/tun is not a TUN device (ioctl TUNSETIFF: ENOTTY): it must be the tun driver's character device 10,200 (mknod /dev/net/tun c 10 200)",
            stderr.Trim());
    }
}
