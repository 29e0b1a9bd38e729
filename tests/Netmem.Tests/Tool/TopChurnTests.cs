using System.Globalization;
using System.Text.Json;
using Netmem.Tool.Cli;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>
/// SLOW (about 65 s): <c>netmem top</c> for a minute against <c>netmem demo --wait</c>, which
/// restarts its devmem queue every second. The rows must stay the live series, not grow with
/// every replaced pool, and the live pools must be the ones shown.
/// </summary>
[Trait("Category", "Slow")]
public sealed class TopChurnTests
{
    [Fact]
    public async Task Top_for_a_minute_of_queue_restarts_shows_only_the_live_pools()
    {
        using ToolProcess demo = await ToolProcess.StartDemoAsync();
        string pid = demo.Id.ToString(CultureInfo.InvariantCulture);

        (int code, string stdout, string stderr) = await ToolProcess.RunProgramAsync(
            ToolProcess.DotnetHost, [ToolProcess.ToolDll, "top", "--pid", pid, "--seconds", "62"], null, TimeSpan.FromSeconds(120));

        Assert.True(code == ExitCodes.Ok, stderr);
        Assert.DoesNotContain("limit", stderr, StringComparison.Ordinal);
        string[][] frames = [.. stdout.Split("--- process ", StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('\n', StringSplitOptions.RemoveEmptyEntries)[2..])];

        // A frame a second for about a minute, and never more than the demo's series: two queues,
        // a header and a payload pool each, the payload pool on dmabuf or (during a restart) pages.
        Assert.True(frames.Length >= 30, $"only {frames.Length} frames in 62 s");
        Assert.All(frames, rows => Assert.InRange(rows.Length, 4, 8));

        // The live pools are the ones top counts: a pools dump taken right after matches one of
        // the last frames (a restart may fall between a frame and the dump, so ask again, bounded).
        HashSet<string>[] recent = [.. frames[^3..].Select(LiveRows)];
        HashSet<string> live = await LivePools(pid);
        for (int attempt = 0; attempt < 5 && !recent.Any(live.SetEquals); attempt++)
        {
            live = await LivePools(pid);
        }

        Assert.True(recent.Any(live.SetEquals), $"pools: {string.Join(", ", live.Order())}; last frame: {string.Join(", ", recent[^1].Order())}");
        Assert.Equal(0, await demo.StopAsync());
    }

    /// <summary>"device queue role provider" of each row with live pools, repeated by the POOLS count.</summary>
    private static HashSet<string> LiveRows(string[] rows) =>
        [.. rows.Select(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(c => int.Parse(c[4], CultureInfo.InvariantCulture) > 0)
            .SelectMany(c => Enumerable.Range(0, int.Parse(c[4], CultureInfo.InvariantCulture)).Select(i => $"{c[0]} {c[1]} {c[2]} {c[3]} #{i}"))];

    /// <summary>The same for the pools <c>netmem pools</c> reports without a detach time.</summary>
    private static async Task<HashSet<string>> LivePools(string pid)
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("pools", "--pid", pid, "--json");
        Assert.True(code == ExitCodes.Ok, stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        return [.. doc.RootElement.GetProperty("page_pools").EnumerateArray()
            .Where(p => p.GetProperty("detach_time").ValueKind == JsonValueKind.Null)
            .Select(p => $"{p.GetProperty("device").GetString()} {p.GetProperty("queue").GetInt32()} {p.GetProperty("role").GetString()} {(p.GetProperty("dmabuf_id").ValueKind == JsonValueKind.Null ? "pages" : "dmabuf")}")
            .GroupBy(k => k)
            .SelectMany(g => g.Select((k, i) => $"{k} #{i}"))];
    }
}
