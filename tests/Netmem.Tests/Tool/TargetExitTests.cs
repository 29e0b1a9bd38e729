using System.Globalization;
using Netmem.Tool.Cli;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary><c>trace</c> and <c>top</c> when the process they watch dies: one line and exit code 5, never a crash.</summary>
public sealed class TargetExitTests
{
    [Theory]
    [InlineData("trace", "{", new[] { "--json" })]
    [InlineData("top", "--- process", new string[0])]
    public async Task A_watched_process_that_dies_ends_the_command_with_one_line_and_exit_code_5(string command, string ready, string[] extra)
    {
        using ToolProcess demo = await ToolProcess.StartDemoAsync();
        string pid = demo.Id.ToString(CultureInfo.InvariantCulture);
        using ToolProcess watcher = await ToolProcess.StartAsync(ready, [command, "--pid", pid, .. extra]);

        demo.Kill();
        int code = await watcher.WaitForExitAsync(ToolProcess.Timeout);

        Assert.Equal(ExitCodes.TargetExited, code);
        string[] errors = [.. watcher.Output.Where(l => l.StartsWith("stderr: ", StringComparison.Ordinal))];
        Assert.Equal($"stderr: netmem: process {pid} exited", errors[^1]);
        Assert.DoesNotContain(errors, l => l.Contains("Exception", StringComparison.Ordinal) || l.Contains("   at ", StringComparison.Ordinal));
    }
}
