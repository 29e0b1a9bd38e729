namespace Netmem.Tool.Cli;

/// <summary>Exit codes of the <c>netmem</c> command, listed in every <c>--help</c> and in the README.</summary>
internal static class ExitCodes
{
    /// <summary>Success.</summary>
    public const int Ok = 0;

    /// <summary>The command ran and failed (attach failure, demo check failed, pool not freed).</summary>
    public const int Failure = 1;

    /// <summary>Bad command line: unknown command or option, missing or malformed value, value out of range.</summary>
    public const int Usage = 2;

    /// <summary>No process has the given pid.</summary>
    public const int NoSuchProcess = 3;

    /// <summary>The process answers over its diagnostic port but no Netmem provider answered within the timeout.</summary>
    public const int NotNetmem = 4;

    /// <summary>The process being traced or watched exited while the command ran.</summary>
    public const int TargetExited = 5;

    /// <summary>One line per code, as <c>--help</c> prints them.</summary>
    public static readonly (int Code, string Meaning)[] All =
    [
        (Ok, "success"),
        (Failure, "failure (a check failed, cannot attach, cannot run here)"),
        (Usage, "usage error (unknown command or option, bad or out-of-range value)"),
        (NoSuchProcess, "no process with that pid"),
        (NotNetmem, "the process did not answer as Netmem within the timeout"),
        (TargetExited, "the traced process exited"),
    ];
}

/// <summary>A failure the command reports as one line on stderr, exiting with <see cref="ExitCode"/>.</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    /// <summary>The process exit code.</summary>
    public int ExitCode { get; } = exitCode;

    /// <summary>A usage error (exit code 2).</summary>
    public static CliException Usage(string message) => new(ExitCodes.Usage, message);
}
