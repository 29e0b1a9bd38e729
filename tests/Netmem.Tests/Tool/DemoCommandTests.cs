using System.Text.Json;
using Netmem.Tool.Cli;
using Netmem.Tool.Commands;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary><c>netmem demo</c> as a user runs it: summary, JSON, and exit codes.</summary>
public sealed class DemoCommandTests
{
    [Fact]
    public async Task Demo_prints_a_summary_with_rates_counters_and_a_clean_teardown_and_exits_0()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("demo", "--seconds", "1", "--payload", "1000");

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        Assert.Contains("netmem demo: 2 queues (queue 0 system pages, 1..1 dmabuf binding", stdout, StringComparison.Ordinal);
        Assert.Contains(" Mpps ", stdout, StringComparison.Ordinal);
        Assert.Contains("Gbit/s payload", stdout, StringComparison.Ordinal);
        Assert.Contains("mismatches 0", stdout, StringComparison.Ordinal);
        Assert.Contains("alloc       fast ", stdout, StringComparison.Ordinal);
        Assert.Contains("recycle     cached ", stdout, StringComparison.Ordinal);
        Assert.Contains("gc          gen0 ", stdout, StringComparison.Ordinal);
        Assert.Contains("teardown    inflight 0  genpool outstanding 0 bytes", stdout, StringComparison.Ordinal);
        Assert.Contains("result      OK", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Demo_json_reports_verified_packets_and_zero_inflight()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("demo", "--seconds", "1", "--json", "--queues", "3", "--flows", "3");

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement r = doc.RootElement;
        Assert.True(r.GetProperty("ok").GetBoolean());
        Assert.Equal(3, r.GetProperty("queues").GetInt32());
        Assert.Equal(3, r.GetProperty("flows").GetInt32());
        Assert.True(r.GetProperty("packets_verified").GetInt64() > 0);
        Assert.Equal(r.GetProperty("packets_delivered").GetInt64(), r.GetProperty("packets_received").GetInt64());
        Assert.Equal(0, r.GetProperty("payload_mismatches").GetInt64());
        Assert.Equal(0, r.GetProperty("inflight_after_teardown").GetInt64());
        Assert.Equal(0, r.GetProperty("gen_pool_outstanding_after_teardown").GetInt64());
        Assert.True(r.GetProperty("packets_per_second").GetDouble() > 0);
        Assert.Empty(r.GetProperty("failures").EnumerateArray());
    }

    [Fact]
    public async Task A_corrupted_payload_fails_the_demo_with_exit_code_1()
    {
        var env = new Dictionary<string, string> { [DemoCommand.FaultVariable] = "corrupt-payload" };
        (int code, string stdout, _) = await ToolProcess.RunWithEnvironmentAsync(env, "demo", "--seconds", "1");

        Assert.Equal(ExitCodes.Failure, code);
        Assert.Contains("result      FAILED: 1 payloads did not match what was injected", stdout, StringComparison.Ordinal);
        Assert.Contains("teardown    inflight 0", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Seconds_above_3600_without_wait_is_a_usage_error_from_the_runner()
    {
        (int code, _, string err) = CliTests.Run("demo", "--seconds", "4000");

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("netmem: --seconds must be above 0 and at most 3600.", err, StringComparison.Ordinal);
    }
}
