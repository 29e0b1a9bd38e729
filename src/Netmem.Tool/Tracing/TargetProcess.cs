using System.Diagnostics;
using Microsoft.Diagnostics.NETCore.Client;
using Netmem.Tool.Cli;

namespace Netmem.Tool.Tracing;

/// <summary>Checks that a pid names a live process that has loaded Netmem, before attaching to it.</summary>
internal static class TargetProcess
{
    /// <summary>The assembly whose mapping in <c>/proc/P/maps</c> shows that Netmem is loaded.</summary>
    public const string CoreAssemblyFile = "Netmem.Core.dll";

    /// <summary>
    /// Throws <see cref="CliException"/> with <see cref="ExitCodes.NoSuchProcess"/> when no process has
    /// <paramref name="pid"/>, or <see cref="ExitCodes.NotNetmem"/> when its mappings show no
    /// Netmem.Core.dll. When the mappings cannot be read (another user, not Linux), it passes and
    /// the caller's attach or timeout decides.
    /// </summary>
    public static void EnsureNetmemLoaded(int pid)
    {
        if (!Exists(pid))
        {
            throw new CliException(ExitCodes.NoSuchProcess, $"no process with pid {pid}");
        }

        if (LoadedNetmem(pid) == false)
        {
            throw NotNetmem(pid);
        }
    }

    public static CliException NotNetmem(int pid, string? detail = null) =>
        new(ExitCodes.NotNetmem, $"process {pid} has not loaded Netmem" + (detail is null ? string.Empty : $" ({detail})"));

    /// <summary>Opens <paramref name="session"/>, turning "no diagnostic port" into a clear error.</summary>
    public static void Attach(EventPipeTraceSession session, int pid)
    {
        try
        {
            session.Start();
        }
        catch (ServerNotAvailableException)
        {
            if (!Exists(pid))
            {
                throw new CliException(ExitCodes.NoSuchProcess, $"no process with pid {pid}");
            }

            throw NotNetmem(pid, "it has no .NET diagnostic port");
        }
        catch (UnauthorizedAccessException e)
        {
            throw new CliException(ExitCodes.Failure, $"cannot attach to process {pid}: {e.Message}");
        }
    }

    private static bool Exists(int pid)
    {
        if (OperatingSystem.IsLinux())
        {
            return Directory.Exists($"/proc/{pid}");
        }

        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>True or false from <c>/proc/P/maps</c>; null when it cannot be read.</summary>
    private static bool? LoadedNetmem(int pid)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        try
        {
            foreach (string line in File.ReadLines($"/proc/{pid}/maps"))
            {
                if (line.EndsWith("/" + CoreAssemblyFile, StringComparison.Ordinal))
                {
                    return true;
                }
            }

            return false;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
