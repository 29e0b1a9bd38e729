using System.Diagnostics;
using Netmem.Tool.Cli;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>The built tool as a process: exit codes as a shell sees them, and targets that are not Netmem.</summary>
public sealed class ToolProcessTests
{
    [Fact]
    public async Task Help_exits_0_as_a_process()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("--help");

        Assert.Equal(0, code);
        Assert.StartsWith("netmem - ", stdout, StringComparison.Ordinal);
        Assert.Empty(stderr);
    }

    [Fact]
    public async Task Unknown_option_exits_2_as_a_process()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("pools", "--frob");

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Contains("netmem: unknown option '--frob' for 'pools'", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public void Pools_on_a_process_without_Netmem_says_so()
    {
        using var sleeper = Process.Start(new ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
        try
        {
            (int code, string output, string error) = CliTests.Run("pools", "--pid", sleeper.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

            Assert.Equal(ExitCodes.NotNetmem, code);
            Assert.Empty(output);
            Assert.Equal($"netmem: process {sleeper.Id} has not loaded Netmem", error.Trim());
        }
        finally
        {
            sleeper.Kill();
            sleeper.WaitForExit(ToolProcess.Timeout);
        }
    }
}
