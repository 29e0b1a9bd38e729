using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Reflection;
using System.Runtime.InteropServices;
using Netmem.Tool.Cli;
using Netmem.Tool.Commands;

namespace Netmem.Tool;

/// <summary>
/// The <c>netmem</c> command: <c>netmem [command] [options]</c>. Builds the command line from
/// <see cref="CommandTable"/> with System.CommandLine, runs one command, and turns failures into
/// one line on stderr and an exit code (<see cref="ExitCodes"/>).
/// </summary>
public static class Program
{
    /// <summary>The entry point.</summary>
    public static int Main(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        ConsoleCancelEventHandler onCtrlC = (_, e) =>
        {
            e.Cancel = true;
            cancel.Cancel();
        };
        Console.CancelKeyPress += onCtrlC;
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx =>
        {
            ctx.Cancel = true;
            cancel.Cancel();
        });
        try
        {
            var context = new CommandContext(Console.Out, Console.Error, cancel.Token)
            {
                Terminal = Terminal.ForStandardOutput(),
                ReadKey = Console.IsInputRedirected ? null : ReadKeyIfAvailable,
            };
            return Run(args, context);
        }
        finally
        {
            Console.CancelKeyPress -= onCtrlC;
        }
    }

    /// <summary>Runs one invocation against the given writers; what <see cref="Main"/> and the tests call.</summary>
    internal static int Run(string[] args, CommandContext context)
    {
        RootCommand root = Build(context);
        ParseResult result = root.Parse(args);
        if (result.Action is ParseErrorAction)
        {
            return ReportParseErrors(result, context);
        }

        try
        {
            return result.Invoke(new InvocationConfiguration
            {
                Output = context.Out,
                Error = context.Error,
                EnableDefaultExceptionHandler = false,
                ProcessTerminationTimeout = null,
            });
        }
        catch (CliException e)
        {
            context.Error.WriteLine($"netmem: {e.Message}");
            if (e.ExitCode == ExitCodes.Usage)
            {
                context.Error.WriteLine(HelpHint(result));
            }

            return e.ExitCode;
        }
    }

    /// <summary>The whole command line: every command of <see cref="CommandTable"/>, the default one's options and action on the root.</summary>
    internal static RootCommand Build(CommandContext context)
    {
        var root = new RootCommand("netmem - Netmem page pools: run a demo, trace and watch pools in a running .NET process")
        {
            HelpName = "netmem",
        };
        foreach (ToolCommand command in CommandTable.Create())
        {
            command.Bind(context);
            root.Subcommands.Add(command);
            if (command.Name == CommandTable.Default)
            {
                // A bare `netmem [options]` is `netmem demo [options]`.
                foreach (Option option in command.Options)
                {
                    root.Options.Add(option);
                }

                root.SetAction(r => command.Run(r, context));
            }
        }

        // Windows-style spellings of help (/?, /h, -?) have no place on this Linux tool.
        HelpOption help = root.Options.OfType<HelpOption>().Single();
        foreach (string alias in help.Aliases.Where(a => a is "/?" or "/h" or "-?").ToList())
        {
            help.Aliases.Remove(alias);
        }

        VersionOption version = root.Options.OfType<VersionOption>().Single();
        version.Action = new PrintVersion();
        HelpText.Install(root);
        return root;
    }

    /// <summary>
    /// Usage errors as <c>netmem: message</c> lines, with the library's suggestions for a
    /// mistyped command or option, a pointer to help, and exit code 2.
    /// </summary>
    private static int ReportParseErrors(ParseResult result, CommandContext context)
    {
        var library = new StringWriter();
        var action = (ParseErrorAction)result.Action!;
        action.ShowHelp = false;
        action.ShowTypoCorrections = true;
        result.Invoke(new InvocationConfiguration { Output = library, Error = library, EnableDefaultExceptionHandler = false });
        HashSet<string> errors = [.. result.Errors.Select(e => e.Message)];
        foreach (string error in errors)
        {
            context.Error.WriteLine($"netmem: {error}");
        }

        // What remains of the library's text is its typo suggestions: "'tpo' was not matched. Did you mean ...?" and the candidates.
        foreach (string line in library.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!errors.Contains(line))
            {
                context.Error.WriteLine(line.EndsWith('?') ? "  " + line : "    " + line);
            }
        }

        context.Error.WriteLine(HelpHint(result));
        return ExitCodes.Usage;
    }

    /// <summary><c>Try 'netmem top --help' for more information.</c></summary>
    private static string HelpHint(ParseResult result)
    {
        string command = result.CommandResult.Command is RootCommand ? "netmem" : "netmem " + result.CommandResult.Command.Name;
        return $"Try '{command} --help' for more information.";
    }

    /// <summary>A key typed at the terminal, or null when none is waiting.</summary>
    private static ConsoleKeyInfo? ReadKeyIfAvailable()
    {
        try
        {
            return Console.KeyAvailable ? Console.ReadKey(intercept: true) : null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>The informational version of this assembly, without a source-revision suffix.</summary>
    internal static string Version
    {
        get
        {
            string v = typeof(Program).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
            int plus = v.IndexOf('+', StringComparison.Ordinal);
            return plus < 0 ? v : v[..plus];
        }
    }

    /// <summary><c>--version</c>: <c>netmem 0.1.0</c>.</summary>
    private sealed class PrintVersion : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine($"netmem {Version}");
            return ExitCodes.Ok;
        }
    }
}
