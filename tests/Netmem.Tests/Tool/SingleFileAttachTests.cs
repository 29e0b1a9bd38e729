using System.Globalization;
using System.Text.Json;
using Netmem.Tool.Cli;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>
/// SLOW (shares one single-file publish): <c>pools</c>, <c>trace</c> and <c>top</c> attach to a
/// process that loads Netmem from a single-file bundle, judging Netmem from what the session
/// answers, not from the process's file mappings.
/// </summary>
[Trait("Category", "Slow")]
public sealed class SingleFileAttachTests(SingleFileAppFixture app, ITestOutputHelper log) : IClassFixture<SingleFileAppFixture>
{
    [Fact]
    public async Task Pools_trace_and_top_attach_to_a_single_file_app_that_maps_no_Netmem_dll()
    {
        log.WriteLine($"single-file publish took {app.PublishTime.TotalSeconds:0} s");
        using ToolProcess demo = await ToolProcess.StartDemoAsync(app.Executable);
        string pid = demo.Id.ToString(CultureInfo.InvariantCulture);
        string maps = await File.ReadAllTextAsync($"/proc/{pid}/maps", TestContext.Current.CancellationToken);
        Assert.DoesNotContain("Netmem.Core.dll", maps, StringComparison.Ordinal);

        (int code, string output, string error) = CliTests.Run("pools", "--pid", pid, "--json");
        Assert.True(code == ExitCodes.Ok, error);
        using (JsonDocument doc = JsonDocument.Parse(output))
        {
            Assert.Contains(doc.RootElement.GetProperty("page_pools").EnumerateArray(), p => p.GetProperty("name").GetString() == "netmem0-q1-payload");
        }

        (code, output, error) = CliTests.Run("trace", "--pid", pid, "--seconds", "2.5");
        Assert.True(code == ExitCodes.Ok, error);
        Assert.Contains(" PagePoolCreated poolId=", output, StringComparison.Ordinal);

        (code, output, error) = CliTests.Run("top", "--pid", pid, "--seconds", "2.5");
        Assert.True(code == ExitCodes.Ok, error);
        Assert.Contains(output.Split('\n'), l => l.StartsWith("netmem0        1 payload dmabuf", StringComparison.Ordinal));

        Assert.Equal(0, await demo.StopAsync());
    }
}
