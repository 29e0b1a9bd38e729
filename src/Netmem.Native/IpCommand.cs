using System.Diagnostics;

namespace Netmem.Native;

/// <summary>The <c>ip</c> command (iproute2) exited with an error or did not finish.</summary>
public sealed class IpCommandException : Exception
{
    public IpCommandException(string commandLine, int exitCode, string standardError)
        : base($"'{commandLine}' failed with exit code {exitCode}: {standardError.Trim()}")
    {
        CommandLine = commandLine;
        ExitCode = exitCode;
        StandardError = standardError;
    }

    public IpCommandException() : this("ip", -1, string.Empty) { }

    public IpCommandException(string message) : base(message) { }

    public IpCommandException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The command as it would be typed, e.g. <c>ip netns add netmem-1-ab</c>.</summary>
    public string CommandLine { get; } = "ip";

    /// <summary>The exit code; -1 when the command timed out.</summary>
    public int ExitCode { get; } = -1;

    /// <summary>What the command wrote to standard error.</summary>
    public string StandardError { get; } = string.Empty;
}

/// <summary>Runs <c>ip</c> as a child process. Slow (a process per call): setup and tests only.</summary>
internal static class IpCommand
{
    /// <summary>How long one <c>ip</c> invocation may take before it is killed.</summary>
    internal const int TimeoutMs = 15_000;

    /// <summary>Runs <c>ip</c> with <paramref name="args"/> and returns its standard output.</summary>
    internal static string Run(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo("ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = false,
            UseShellExecute = false,
        };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        string commandLine = "ip " + string.Join(' ', psi.ArgumentList);
        using Process p = Process.Start(psi) ?? throw new IpCommandException(commandLine, -1, "could not start 'ip'");
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        if (!p.WaitForExit(TimeoutMs))
        {
            try
            {
                p.Kill();
            }
            catch (InvalidOperationException)
            {
                // Exited between the timeout and the kill.
            }

            throw new IpCommandException(commandLine, -1, $"timed out after {TimeoutMs} ms");
        }

        p.WaitForExit();
        string output = stdout.GetAwaiter().GetResult();
        string error = stderr.GetAwaiter().GetResult();
        if (p.ExitCode != 0)
        {
            throw new IpCommandException(commandLine, p.ExitCode, error);
        }

        return output;
    }
}
