using System.Diagnostics;

namespace Netmem.Tests.Tool;

/// <summary>
/// The built <c>netmem</c> tool run as a child process: <c>dotnet netmem.dll ...</c> from this
/// test assembly's output, where the project reference copies it. Every wait is bounded.
/// </summary>
internal sealed class ToolProcess : IDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly Process _process;
    private readonly List<string> _stdout = [];
    private readonly TaskCompletionSource<string> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _readyPrefix;

    private ToolProcess(string[] args, string readyPrefix, string? program = null)
    {
        _readyPrefix = readyPrefix;
        var psi = new ProcessStartInfo(program ?? DotnetHost)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (program is null)
        {
            psi.ArgumentList.Add(ToolDll);
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        _process = new Process { StartInfo = psi };
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                _ready.TrySetException(new InvalidOperationException("netmem exited before it was ready: " + string.Join('\n', _stdout)));
                return;
            }

            lock (_stdout)
            {
                _stdout.Add(e.Data);
            }

            if (e.Data.StartsWith(_readyPrefix, StringComparison.Ordinal))
            {
                _ready.TrySetResult(e.Data);
            }
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stdout)
                {
                    _stdout.Add("stderr: " + e.Data);
                }
            }
        };
        _process.Start();
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>The tool's main assembly next to this test assembly.</summary>
    public static string ToolDll => Path.Combine(AppContext.BaseDirectory, "netmem.dll");

    /// <summary>The dotnet host running the tests (set by <c>dotnet test</c>), else <c>dotnet</c> from PATH.</summary>
    public static string DotnetHost => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } p ? p : "dotnet";

    public int Id => _process.Id;

    public IReadOnlyList<string> Output
    {
        get
        {
            lock (_stdout)
            {
                return [.. _stdout];
            }
        }
    }

    /// <summary>Starts <c>netmem demo --wait</c> (with <paramref name="program"/>, a published netmem, when given) and waits until it prints that its pools exist.</summary>
    public static async Task<ToolProcess> StartDemoAsync(string? program = null)
    {
        var p = new ToolProcess(["demo", "--wait"], "demo: running", program);
        try
        {
            await p._ready.Task.WaitAsync(Timeout);
            return p;
        }
        catch
        {
            p.Dispose();
            throw;
        }
    }

    /// <summary>Starts the tool with <paramref name="args"/> and waits until a stdout line starts with <paramref name="readyPrefix"/>.</summary>
    public static async Task<ToolProcess> StartAsync(string readyPrefix, params string[] args)
    {
        var p = new ToolProcess(args, readyPrefix);
        try
        {
            await p._ready.Task.WaitAsync(Timeout);
            return p;
        }
        catch
        {
            p.Dispose();
            throw;
        }
    }

    /// <summary>Starts the tool with <paramref name="args"/> and waits (bounded) until its .NET diagnostic port is open.</summary>
    public static async Task<ToolProcess> StartWithDiagnosticPortAsync(params string[] args)
    {
        var p = new ToolProcess(args, "\0 no line starts so");
        var clock = Stopwatch.StartNew();
        while (Directory.GetFiles(Path.GetTempPath(), $"dotnet-diagnostic-{p.Id}-*-socket").Length == 0)
        {
            if (clock.Elapsed > Timeout || p._process.HasExited)
            {
                p.Dispose();
                throw new TimeoutException($"netmem {string.Join(' ', args)} opened no diagnostic port within {Timeout.TotalSeconds} s");
            }

            await Task.Delay(50);
        }

        return p;
    }

    /// <summary>Runs the tool to completion; returns its exit code and output.</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> RunAsync(params string[] args) =>
        RunWithEnvironmentAsync(new Dictionary<string, string>(), args);

    /// <summary>Runs the tool to completion with extra environment variables.</summary>
    public static Task<(int ExitCode, string Stdout, string Stderr)> RunWithEnvironmentAsync(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        RunProgramAsync(DotnetHost, [ToolDll, .. args], environment, Timeout);

    /// <summary>Runs any program to completion within <paramref name="timeout"/>; returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string Stdout, string Stderr)> RunProgramAsync(string program, IEnumerable<string> args, IReadOnlyDictionary<string, string>? environment, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach ((string key, string value) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[key] = value;
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using var p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', psi.ArgumentList)} did not exit within {timeout.TotalSeconds} s");
        }

        return (p.ExitCode, await stdout, await stderr);
    }

    /// <summary>Ends the process at once (SIGKILL), as a crash would, and waits until it is gone.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit(Timeout);
    }

    /// <summary>Waits (bounded) for the process to exit on its own; returns its exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>Closes stdin (the demo's clean stop) and waits for the exit code; kills it only on timeout.</summary>
    public async Task<int> StopAsync()
    {
        _process.StandardInput.Close();
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException("netmem demo did not exit within " + Timeout.TotalSeconds + " s of stdin closing");
        }

        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.StandardInput.Close();
                if (!_process.WaitForExit(Timeout))
                {
                    _process.Kill(entireProcessTree: true);
                }
            }
        }
        catch (InvalidOperationException)
        {
        }

        _process.Dispose();
    }
}
