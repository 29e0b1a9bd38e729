using System.Diagnostics;
using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>
/// SLOW (a publish, 1 to 3 minutes here): <c>netmem</c> published once as a single-file app
/// (<c>PublishSingleFile</c>, framework-dependent, linux-x64) into a temporary folder. Netmem
/// is inside the bundle, so the process maps no <c>Netmem.Core.dll</c>: tools must find it
/// through its diagnostic port.
/// </summary>
public sealed class SingleFileAppFixture : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "netmem-single-file-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>The published executable.</summary>
    public string Executable => Path.Combine(_dir, "netmem");

    /// <summary>How long the publish took, for the test log.</summary>
    public TimeSpan PublishTime { get; private set; }

    public async ValueTask InitializeAsync()
    {
        string project = Path.Combine(RepositoryRoot(), "src", "Netmem.Tool", "Netmem.Tool.csproj");
        var clock = Stopwatch.StartNew();
        (int code, string stdout, string stderr) = await ToolProcess.RunProgramAsync(
            ToolProcess.DotnetHost,
            ["publish", project, "-c", "Release", "-r", "linux-x64", "--self-contained", "false", "-p:PublishSingleFile=true", "-o", _dir, "--nologo"],
            new Dictionary<string, string> { ["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1", ["MSBUILDDISABLENODEREUSE"] = "1" },
            TimeSpan.FromMinutes(8));
        PublishTime = clock.Elapsed;
        if (code != 0 || !File.Exists(Executable))
        {
            throw new InvalidOperationException($"dotnet publish -p:PublishSingleFile=true failed ({code}):\n{stdout}\n{stderr}");
        }
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Netmem.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("Netmem.sln not found above " + AppContext.BaseDirectory);
    }
}
