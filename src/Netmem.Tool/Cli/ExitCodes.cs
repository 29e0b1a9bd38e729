namespace Netmem.Tool.Cli;

/// <summary>Exit codes of the <c>netmem</c> command, listed in <c>--help</c>.</summary>
internal static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>The command ran and failed (attach failure, timeout, demo pool not freed).</summary>
    public const int Failure = 1;

    /// <summary>Bad command line: unknown command or option, missing or malformed value.</summary>
    public const int Usage = 2;

    /// <summary>No process has the given pid.</summary>
    public const int NoSuchProcess = 3;

    /// <summary>The process exists but has not loaded Netmem (or does not answer as Netmem).</summary>
    public const int NotNetmem = 4;
}

/// <summary>A failure the command reports as one line on stderr, exiting with <see cref="ExitCode"/>.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public static CliException Usage(string message) => new(ExitCodes.Usage, message);
}
