using Netmem.Tool.Demo;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>
/// The demo's progress: a line rewritten with <c>\r</c> only on a terminal where it is the
/// foreground job; nothing but the summary into a file or pipe, plain lines with <c>--progress</c>.
/// </summary>
public sealed class ProgressOutputTests
{
    [Fact]
    public async Task Redirected_output_has_no_progress_lines_only_the_summary()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("demo", "--seconds", "1.5");

        Assert.True(code == 0, stdout + stderr);
        Assert.DoesNotContain('\r', stdout);
        Assert.StartsWith("netmem demo: ", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("Mpps  delivered", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Progress_option_prints_plain_lines_every_second_when_redirected()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("demo", "--seconds", "2.5", "--progress");

        Assert.True(code == 0, stdout + stderr);
        Assert.DoesNotContain('\r', stdout);
        string[] progress = [.. stdout.Split('\n').Where(l => l.StartsWith('[') && l.Contains("Mpps  delivered", StringComparison.Ordinal))];
        Assert.InRange(progress.Length, 1, 3);
        Assert.StartsWith("[   1.0s]", progress[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_a_terminal_in_the_foreground_progress_rewrites_one_line()
    {
        (int code, string stdout, string stderr) = await InPseudoTerminal(background: false);

        Assert.True(code == 0, stdout + stderr);
        Assert.Contains("\r[", stdout, StringComparison.Ordinal);
        Assert.Contains("netmem demo: ", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_a_terminal_it_does_not_own_progress_stays_quiet()
    {
        (int code, string stdout, string stderr) = await InPseudoTerminal(background: true);

        Assert.True(code == 0, stdout + stderr);
        Assert.DoesNotContain("\r[", stdout, StringComparison.Ordinal);
        Assert.Contains("netmem demo: ", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public void Live_progress_is_written_only_while_the_process_is_in_the_foreground()
    {
        var foreground = new StringWriter();
        var background = new StringWriter();

        DemoResult a = DemoRunner.Run(new DemoOptions { Seconds = 0.8, Progress = ProgressMode.Live, IsForeground = () => true }, foreground, CancellationToken.None);
        DemoResult b = DemoRunner.Run(new DemoOptions { Seconds = 0.8, Progress = ProgressMode.Live, IsForeground = () => false }, background, CancellationToken.None);

        Assert.True(a.Ok && b.Ok);
        Assert.StartsWith("\r[", foreground.ToString(), StringComparison.Ordinal);
        Assert.Equal(string.Empty, background.ToString());
    }

    /// <summary>
    /// Runs a short demo under <c>script</c>, which gives it a pseudo-terminal as stdout. With
    /// <paramref name="background"/> it runs through <c>setsid</c>: same terminal, but not its
    /// foreground job (as a job started with &amp; in an interactive shell).
    /// </summary>
    private static Task<(int ExitCode, string Stdout, string Stderr)> InPseudoTerminal(bool background)
    {
        if (!File.Exists("/usr/bin/script") || !File.Exists("/usr/bin/setsid"))
        {
            Support.Requires.Unmet("needs util-linux's script and setsid for a pseudo-terminal");
        }

        string command = $"{(background ? "setsid -w " : string.Empty)}'{ToolProcess.DotnetHost}' '{ToolProcess.ToolDll}' demo --seconds 1.5";
        return ToolProcess.RunProgramAsync("/usr/bin/script", ["-qec", command, "/dev/null"], null, ToolProcess.Timeout);
    }
}
