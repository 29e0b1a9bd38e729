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
        Assert.StartsWith("Description:\n  netmem - ", stdout, StringComparison.Ordinal);
        Assert.Empty(stderr);
    }

    [Fact]
    public async Task Unknown_option_exits_2_as_a_process()
    {
        (int code, string stdout, string stderr) = await ToolProcess.RunAsync("pools", "--frob");

        Assert.Equal(2, code);
        Assert.Empty(stdout);
        Assert.Contains("netmem: Unrecognized command or argument '--frob'.", stderr, StringComparison.Ordinal);
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
            Assert.Equal($"netmem: process {sleeper.Id} has not loaded Netmem (it has no .NET diagnostic port: not a .NET process, or started with DOTNET_EnableDiagnostics=0)", error.Trim());
        }
        finally
        {
            sleeper.Kill();
            sleeper.WaitForExit(ToolProcess.Timeout);
        }
    }

    [Fact]
    public void A_process_whose_diagnostic_port_never_answers_fails_with_a_clear_message_after_the_timeout()
    {
        // A stuck runtime: its diagnostic port accepts the connection and never answers the
        // request to start a session. Stood in for by a listening socket where the port of a
        // `sleep` process would be.
        using var sleeper = Process.Start(new ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
        string path = Path.Combine(Path.GetTempPath(), $"dotnet-diagnostic-{sleeper.Id}-0-socket");
        using var port = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        var held = new List<System.Net.Sockets.Socket>();
        try
        {
            port.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
            port.Listen(4);
            _ = port.AcceptAsync(TestContext.Current.CancellationToken).AsTask().ContinueWith(t => { if (t.IsCompletedSuccessfully) { held.Add(t.Result); } }, TaskScheduler.Default);

            (int code, string output, string error) = CliTests.Run("pools", "--pid", sleeper.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--timeout", "2");

            Assert.Equal(ExitCodes.Failure, code);
            Assert.Empty(output);
            Assert.Equal($"netmem: cannot attach: process {sleeper.Id} did not answer the request to start a trace session within 2 s", error.Trim());
        }
        finally
        {
            held.ForEach(h => h.Dispose());
            File.Delete(path);
            sleeper.Kill();
            sleeper.WaitForExit(ToolProcess.Timeout);
        }
    }

    [Fact]
    public async Task A_dotnet_process_whose_Netmem_provider_never_answers_exits_4_after_the_timeout()
    {
        // `netmem trace` is a .NET process with a diagnostic port that never creates a pool, so
        // it has no Netmem provider to answer.
        using ToolProcess demo = await ToolProcess.StartDemoAsync();
        using ToolProcess tracer = await ToolProcess.StartWithDiagnosticPortAsync("trace", "--json", "--pid", demo.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));

        (int code, string output, string error) = CliTests.Run("pools", "--pid", tracer.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--timeout", "2");

        Assert.Equal(ExitCodes.NotNetmem, code);
        Assert.Empty(output);
        Assert.Equal($"netmem: process {tracer.Id} has not loaded Netmem (no Netmem provider answered within 2 s; it has not loaded Netmem or not created a page pool yet)", error.Trim());
        Assert.Equal(0, await demo.StopAsync());
    }
}
