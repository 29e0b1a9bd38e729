using System.Globalization;
using System.Text.Json;
using Netmem.Tests.Support;
using Netmem.Tool.Cli;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>
/// The JSON each command prints, key by key, as the README's "JSON output" section documents it:
/// one style everywhere (snake_case), plain numbers for counts and bytes.
/// </summary>
public sealed class JsonSchemaTests(DemoProcessFixture demo) : IClassFixture<DemoProcessFixture>
{
    internal static readonly string[] DemoKeys =
    [
        "seconds", "payload", "queues", "flows", "packets_injected", "packets_delivered", "packets_received", "packets_verified",
        "payload_mismatches", "packets_per_second", "gbit_per_second", "drops_by_reason", "alloc_fast", "alloc_slow", "alloc_refill",
        "recycle_cached", "recycle_ring", "recycle_ring_full", "gen0_collections", "gen1_collections", "gen2_collections",
        "inflight_after_teardown", "gen_pool_outstanding_after_teardown", "binding_id", "rebinds", "failures", "ok",
    ];

    internal static readonly string[] TunKeys = [.. DemoKeys, "packets_dropped", "interface", "kernel_tx_packets", "kernel_tx_bytes", "kernel_tx_dropped"];

    internal static readonly string[] PagePoolKeys =
        ["id", "name", "ifindex", "queue", "napi_id", "inflight", "inflight_mem", "detach_time", "dmabuf_id", "shared", "order", "device", "role"];

    [Fact]
    public async Task Demo_json_has_the_documented_keys()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("demo", "--seconds", "1", "--json");

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        Assert.Equal(DemoKeys.Order(StringComparer.Ordinal), doc.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        AssertSnakeCase(doc.RootElement);
    }

    [Fact]
    public async Task Tun_json_has_the_demo_keys_and_the_kernel_counters()
    {
        Requires.NetNamespaces();

        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("tun", "--count", "500", "--json");

        Assert.True(code == ExitCodes.Ok, stdout + stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        Assert.Equal(TunKeys.Order(StringComparer.Ordinal), doc.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        AssertSnakeCase(doc.RootElement);
    }

    [Fact]
    public void Pools_json_has_the_documented_keys()
    {
        (int code, string output, string error) = CliTests.Run("pools", "--pid", demo.Pid.ToString(CultureInfo.InvariantCulture), "--json");

        Assert.True(code == ExitCodes.Ok, error);
        using JsonDocument doc = JsonDocument.Parse(output);
        JsonElement root = doc.RootElement;
        Assert.Equal(["pid", "page_pools", "page_pool_stats", "queues", "devices"], root.EnumerateObject().Select(p => p.Name).Take(5));
        Assert.All(root.GetProperty("page_pools").EnumerateArray(), p => Assert.Equal(PagePoolKeys, p.EnumerateObject().Select(k => k.Name)));
        Assert.All(root.GetProperty("page_pool_stats").EnumerateArray(), p => Assert.Equal(["id", "name", "ifindex", "queue", "stats"], p.EnumerateObject().Select(k => k.Name)));
        Assert.All(root.GetProperty("queues").EnumerateArray(), p => Assert.Equal(["ifindex", "device", "id", "type", "napi_id", "dmabuf_id"], p.EnumerateObject().Select(k => k.Name)));
        Assert.All(root.GetProperty("devices").EnumerateArray(), p => Assert.Equal(
            ["ifindex", "name", "up", "rx_queues", "tcp_data_split", "hds_threshold", "xdp_programs", "queue_management"], p.EnumerateObject().Select(k => k.Name)));
        AssertSnakeCase(root);
    }

    /// <summary>Every key at every depth is snake_case.</summary>
    internal static void AssertSnakeCase(JsonElement e)
    {
        if (e.ValueKind == JsonValueKind.Object)
        {
            foreach (JsonProperty p in e.EnumerateObject())
            {
                Assert.Matches("^[a-z][a-z0-9_]*$", p.Name);
                AssertSnakeCase(p.Value);
            }
        }
        else if (e.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement item in e.EnumerateArray())
            {
                AssertSnakeCase(item);
            }
        }
    }
}
