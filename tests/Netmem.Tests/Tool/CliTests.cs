using Netmem.Tool;
using Netmem.Tool.Cli;
using Netmem.Tool.Commands;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>The command line: help, options, validation, suggestions and errors, run in-process through <c>Program.Run</c>.</summary>
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
    public void Help_lists_usage_commands_options_examples_and_exit_codes(string flag)
    {
        (int code, string output, string error) = Run(flag);

        Assert.Equal(ExitCodes.Ok, code);
        Assert.Empty(error);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        foreach (string command in new[] { "demo", "tun", "trace", "top", "pools", "completion" })
        {
            Assert.Contains($"\n  {command} ", output, StringComparison.Ordinal);
        }

        Assert.Contains("--version", output, StringComparison.Ordinal);
        Assert.Contains("Examples:", output, StringComparison.Ordinal);
        Assert.Contains("netmem trace --pid", output, StringComparison.Ordinal);
        Assert.Contains("  2  usage error", output, StringComparison.Ordinal);
        Assert.Contains("  5  the traced process exited", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Command_help_gives_each_option_its_meaning_range_and_default()
    {
        (int code, string output, _) = Run("top", "--help");

        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("netmem top [options]", output, StringComparison.Ordinal);
        string refresh = output.Split('\n').Single(l => l.TrimStart().StartsWith("--refresh-interval", StringComparison.Ordinal));
        Assert.Contains("seconds between updates (range 1..300) [default: 1]", refresh, StringComparison.Ordinal);
        Assert.Contains("-p, --pid <PID> (REQUIRED)", output, StringComparison.Ordinal);
        Assert.Contains("netmem top --pid 4242 --device netmem0", output, StringComparison.Ordinal);
        Assert.DoesNotContain("--wait", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Version_prints_the_tool_version()
    {
        (int code, string output, _) = Run("--version");

        Assert.Equal(ExitCodes.Ok, code);
        Assert.Equal("netmem 0.1.0", output.Trim());
    }

    [Fact]
    public void A_mistyped_command_gets_a_suggestion_and_exit_code_2()
    {
        (int code, string output, string error) = Run("tpo", "--pid", "1");

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Empty(output);
        string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal("netmem: Unrecognized command or argument 'tpo'.", lines[0]);
        Assert.Contains("'tpo' was not matched. Did you mean one of the following?", lines);
        Assert.Contains("top", lines);
        Assert.Equal("Try 'netmem --help' for more information.", lines[^1]);
    }

    [Fact]
    public void A_mistyped_option_gets_a_suggestion()
    {
        (int code, _, string error) = Run("top", "--pid", "1", "--refresh-intervl", "2");

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("netmem: Unrecognized command or argument '--refresh-intervl'.", error, StringComparison.Ordinal);
        Assert.Contains("    --refresh-interval", error, StringComparison.Ordinal);
        Assert.Contains("Try 'netmem top --help' for more information.", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "top", "--pid", "1", "--seconds", "5000000" }, "option '--seconds' expects a number of seconds from 0.1 to 604800, got '5000000'")]
    [InlineData(new[] { "trace", "--pid", "1", "--seconds", "NaN" }, "option '--seconds' expects a number of seconds from 0.1 to 604800, got 'NaN'")]
    [InlineData(new[] { "trace", "--pid", "1", "--seconds", "Infinity" }, "option '--seconds' expects a number of seconds from 0.1 to 604800, got 'Infinity'")]
    [InlineData(new[] { "top", "--pid", "1", "--seconds", "soon" }, "option '--seconds' expects a number of seconds from 0.1 to 604800, got 'soon'")]
    [InlineData(new[] { "top", "--pid", "1", "--refresh-interval", "0" }, "option '--refresh-interval' expects an integer from 1 to 300, got '0'")]
    [InlineData(new[] { "pools", "--pid", "1", "--timeout", "1e9" }, "option '--timeout' expects a number of seconds from 0.5 to 600, got '1e9'")]
    [InlineData(new[] { "pools", "--pid", "abc" }, "option '--pid' expects an integer from 1 to 2147483647, got 'abc'")]
    [InlineData(new[] { "pools", "--pid=-4" }, "option '--pid' expects an integer from 1 to 2147483647, got '-4'")]
    [InlineData(new[] { "pools", "--pid", "99999999999" }, "option '--pid' expects an integer from 1 to 2147483647, got '99999999999'")]
    [InlineData(new[] { "demo", "--payload", "9000" }, "option '--payload' expects an integer from 1 to 8972, got '9000'")]
    [InlineData(new[] { "--queues", "1" }, "option '--queues' expects an integer from 2 to 16, got '1'")]
    [InlineData(new[] { "demo", "--flows", "65" }, "option '--flows' expects an integer from 1 to 64, got '65'")]
    [InlineData(new[] { "demo", "--seconds", "-1" }, "option '--seconds' expects a number of seconds from 0.1 to 604800, got '-1'")]
    [InlineData(new[] { "tun", "--count", "0" }, "option '--count' expects an integer from 1 to 10000000, got '0'")]
    [InlineData(new[] { "tun", "--payload", "1473" }, "option '--payload' expects an integer from 1 to 1472, got '1473'")]
    [InlineData(new[] { "tun", "--queues", "17" }, "option '--queues' expects an integer from 1 to 16, got '17'")]
    [InlineData(new[] { "top", "--pid", "1", "--queue", "x" }, "option '--queue' expects an integer from -1 to 65535, got 'x'")]
    public void Every_numeric_option_is_range_checked_with_a_clear_message(string[] args, string message)
    {
        (int code, string output, string error) = Run(args);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Empty(output);
        Assert.Contains("netmem: " + message, error, StringComparison.Ordinal);
        Assert.Contains("--help' for more information.", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "pools" }, "netmem: Option '--pid' is required.")]
    [InlineData(new[] { "trace", "--pid" }, "netmem: Required argument missing for option: '--pid'.")]
    [InlineData(new[] { "tun", "--pid", "1" }, "netmem: Unrecognized command or argument '--pid'.")]
    [InlineData(new[] { "completion", "fish" }, "netmem: Argument 'fish' not recognized. Must be one of:")]
    public void Other_usage_errors_exit_2(string[] args, string message)
    {
        (int code, _, string error) = Run(args);

        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains(message, error, StringComparison.Ordinal);
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
    public void Every_command_is_in_the_table_with_demo_as_default()
    {
        Assert.Equal(["demo", "tun", "xdp", "udp", "relay", "trace", "top", "pools", "completion"], CommandTable.Create().Select(c => c.Name));
        Assert.Equal("demo", CommandTable.Default);
    }

    [Fact]
    public void Completion_bash_prints_a_function_that_asks_netmem_through_the_suggest_directive()
    {
        (int code, string output, _) = Run("completion", "bash");

        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("_netmem_complete()", output, StringComparison.Ordinal);
        Assert.Contains("\"[suggest:${#args}]\" \"$args\"", output, StringComparison.Ordinal);
        Assert.Contains("complete -o default -F _netmem_complete netmem", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("t", new[] { "top", "trace", "tun" })]
    [InlineData("top --re", new[] { "--refresh-interval" })]
    [InlineData("demo --pay", new[] { "--payload" })]
    [InlineData("completion ", new[] { "bash", "zsh" })]
    public void The_suggest_directive_completes_commands_and_options(string line, string[] expected)
    {
        (int code, string output, _) = Run($"[suggest:{line.Length}]", line);

        Assert.Equal(ExitCodes.Ok, code);
        string word = line.Split(' ')[^1];
        string[] candidates = [.. output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(c => c.StartsWith(word, StringComparison.Ordinal))];
        Assert.Subset(candidates.ToHashSet(), expected.ToHashSet());
        if (word.Length > 0)
        {
            Assert.Equal(expected.Order(StringComparer.Ordinal), candidates.Order(StringComparer.Ordinal));
        }
    }
}
