using Netmem.Tool;
using Netmem.Tool.Cli;
using Netmem.Tool.Commands;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>The command line: help, options and errors, run in-process through <c>Program.Run</c>.</summary>
public sealed class CliTests
{
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = Program.Run(args, new CommandContext(output, error, CancellationToken.None));
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("-h")]
    [InlineData("help")]
    public void Help_lists_usage_commands_options_examples_and_exits_0(string flag)
    {
        (int code, string output, string error) = Run(flag);

        Assert.Equal(ExitCodes.Ok, code);
        Assert.Empty(error);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        foreach (string command in new[] { "demo", "tun", "trace", "top", "pools" })
        {
            Assert.Contains($"\n  {command} ", output, StringComparison.Ordinal);
        }

        foreach (string option in new[] { "--pid P", "--verbose", "--json", "--seconds N", "--help", "--version" })
        {
            Assert.Contains(option, output, StringComparison.Ordinal);
        }

        Assert.Contains("Examples:", output, StringComparison.Ordinal);
        Assert.Contains("netmem trace --pid", output, StringComparison.Ordinal);
        Assert.Contains("2 usage error", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Command_help_shows_only_that_commands_options()
    {
        (int code, string output, _) = Run("trace", "--help");

        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("netmem trace --pid P [--verbose]", output, StringComparison.Ordinal);
        Assert.Contains("--verbose", output, StringComparison.Ordinal);
        Assert.DoesNotContain("    --wait", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Version_prints_the_tool_version()
    {
        (int code, string output, _) = Run("--version");

        Assert.Equal(ExitCodes.Ok, code);
        Assert.Equal("netmem 0.1.0", output.Trim());
    }

    [Theory]
    [InlineData(new[] { "--bogus" }, "unknown option '--bogus' for 'demo'")]
    [InlineData(new[] { "trace", "--pid", "1", "--json", "--wait" }, "unknown option '--wait' for 'trace'")]
    [InlineData(new[] { "frobnicate" }, "unknown command 'frobnicate'")]
    [InlineData(new[] { "pools", "--pid", "abc" }, "option '--pid' expects a positive integer, got 'abc'")]
    [InlineData(new[] { "pools", "--pid=-4" }, "option '--pid' expects a positive integer, got '-4'")]
    [InlineData(new[] { "top", "--pid", "1", "--seconds", "soon" }, "option '--seconds' expects a positive number of seconds, got 'soon'")]
    [InlineData(new[] { "trace", "--pid" }, "option '--pid' needs a value (P)")]
    [InlineData(new[] { "pools" }, "'pools' needs --pid P")]
    [InlineData(new[] { "pools", "--json=yes" }, "option '--json' takes no value")]
    public void Usage_errors_exit_2_with_a_message_and_a_hint(string[] args, string message)
    {
        (int code, string output, string error) = Run(args);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Empty(output);
        Assert.Contains("netmem: " + message, error, StringComparison.Ordinal);
        Assert.Contains("Try 'netmem --help'", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("pools")]
    [InlineData("trace")]
    [InlineData("top")]
    public void A_pid_with_no_process_is_a_clear_error(string command)
    {
        (int code, _, string error) = Run(command, "--pid", "2147483600");

        Assert.Equal(ExitCodes.NoSuchProcess, code);
        Assert.Equal("netmem: no process with pid 2147483600", error.Trim());
    }

    [Fact]
    public void Tun_rejects_options_it_does_not_take()
    {
        (int code, _, string error) = Run("tun", "--pid", "1");

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("unknown option '--pid' for 'tun'", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_command_is_in_the_table_with_demo_as_default()
    {
        Assert.Equal(["demo", "tun", "trace", "top", "pools"], CommandTable.All.Select(c => c.Name));
        Assert.Equal("demo", CommandTable.Default);
    }
}
