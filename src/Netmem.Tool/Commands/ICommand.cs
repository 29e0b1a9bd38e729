using Netmem.Tool.Cli;

namespace Netmem.Tool.Commands;

/// <summary>One <c>netmem</c> command. Implementations live one per file in this folder and are listed in <see cref="CommandTable"/>.</summary>
internal interface ICommand
{
    /// <summary>The word typed on the command line.</summary>
    string Name { get; }

    /// <summary>One line for the command list in <c>netmem --help</c>.</summary>
    string Summary { get; }

    /// <summary>The synopsis line, e.g. <c>netmem trace --pid P [--verbose]</c>.</summary>
    string Usage { get; }

    /// <summary>The options this command accepts; others are usage errors.</summary>
    OptionKinds Options { get; }

    /// <summary>Example lines for <c>--help</c>.</summary>
    IReadOnlyList<string> Examples { get; }

    /// <summary>Runs the command; returns the exit code. Throws <see cref="CliException"/> for reportable failures.</summary>
    int Run(CommandOptions options, CommandContext context);
}

/// <summary>What a command runs with: output writers and the cancellation that Ctrl+C and SIGTERM trigger.</summary>
internal sealed class CommandContext(TextWriter output, TextWriter error, CancellationToken cancellation)
{
    public TextWriter Out { get; } = output;

    public TextWriter Error { get; } = error;

    /// <summary>Cancelled by Ctrl+C (SIGINT) or SIGTERM.</summary>
    public CancellationToken Cancellation { get; } = cancellation;

    /// <summary>True when stdout is a terminal, so live views may move the cursor.</summary>
    public bool IsInteractive { get; init; }
}
