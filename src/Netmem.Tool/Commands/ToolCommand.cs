using System.CommandLine;
using Netmem.Tool.Cli;

namespace Netmem.Tool.Commands;

/// <summary>
/// One <c>netmem</c> command: a System.CommandLine <see cref="Command"/> with its options,
/// examples for <c>--help</c>, and <see cref="Run"/>. Implementations live one per file in this
/// folder and are listed in <see cref="CommandTable"/>.
/// </summary>
/// <remarks>
/// To add a command: derive from this class, create its options in fields with
/// <see cref="ToolOptions"/> (ranges and defaults go there, so help and validation agree), add
/// them with <see cref="Command.Options"/> in the constructor, read them in <see cref="Run"/>
/// with <c>result.GetValue(option)</c>, and add <c>new MyCommand()</c> to
/// <see cref="CommandTable.Create"/>.
/// </remarks>
internal abstract class ToolCommand : Command
{
    protected ToolCommand(string name, string summary)
        : base(name, summary)
    {
    }

    /// <summary>Example lines for <c>--help</c>.</summary>
    public abstract IReadOnlyList<string> Examples { get; }

    /// <summary>Runs the command; returns the exit code. Throws <see cref="CliException"/> for reportable failures.</summary>
    public abstract int Run(ParseResult result, CommandContext context);

    /// <summary>Makes <see cref="Run"/> the command's action for one invocation with <paramref name="context"/>.</summary>
    public void Bind(CommandContext context) => SetAction(result => Run(result, context));
}

/// <summary>What a command runs with: output writers, the cancellation that Ctrl+C and SIGTERM trigger, and the terminal.</summary>
internal sealed class CommandContext(TextWriter output, TextWriter error, CancellationToken cancellation)
{
    /// <summary>Standard output.</summary>
    public TextWriter Out { get; } = output;

    /// <summary>Standard error.</summary>
    public TextWriter Error { get; } = error;

    /// <summary>Cancelled by Ctrl+C (SIGINT) or SIGTERM.</summary>
    public CancellationToken Cancellation { get; } = cancellation;

    /// <summary>What stdout is connected to: a terminal we own, a terminal in the background, or a file or pipe.</summary>
    public Terminal Terminal { get; init; } = Terminal.None;

    /// <summary>True when stdout is a terminal where this process is in the foreground, so live views may move the cursor.</summary>
    public bool IsInteractive => Terminal.IsForeground;

    /// <summary>Keys typed at the terminal (<c>q</c>, <c>p</c>); null when stdin is not a terminal.</summary>
    public Func<ConsoleKeyInfo?>? ReadKey { get; init; }
}
