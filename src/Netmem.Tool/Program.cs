using System.Reflection;
using System.Runtime.InteropServices;
using Netmem.Tool.Cli;
using Netmem.Tool.Commands;

namespace Netmem.Tool;

/// <summary>
/// The <c>netmem</c> command: <c>netmem [command] [options]</c>. Parses the command line, runs
/// one command from <see cref="CommandTable"/>, and turns failures into one line on stderr and
/// an exit code (<see cref="ExitCodes"/>).
/// </summary>
public static class Program
{
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
            var context = new CommandContext(Console.Out, Console.Error, cancel.Token) { IsInteractive = !Console.IsOutputRedirected };
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
        try
        {
            (string? name, string[] rest) = CommandLine.SplitCommand(args);
            if (name is null)
            {
                if (rest.Length > 0 && rest[0] == "--version")
                {
                    if (rest.Length > 1)
                    {
                        throw CliException.Usage($"unexpected argument '{rest[1]}' after --version");
                    }

                    context.Out.WriteLine($"netmem {Version}");
                    return ExitCodes.Ok;
                }

                if (rest.Length > 0 && rest[0] is "--help" or "-h")
                {
                    context.Out.Write(Help.General());
                    return ExitCodes.Ok;
                }
            }

            if (name == "help")
            {
                ICommand? about = rest.Length > 0 ? CommandTable.Find(rest[0]) : null;
                context.Out.Write(about is null ? Help.General() : Help.For(about));
                return ExitCodes.Ok;
            }

            ICommand command = CommandTable.Find(name ?? CommandTable.Default)
                ?? throw CliException.Usage($"unknown command '{name}'");
            CommandOptions options = CommandLine.Parse(command.Name, rest, command.Options);
            if (options.Help)
            {
                context.Out.Write(Help.For(command));
                return ExitCodes.Ok;
            }

            return command.Run(options, context);
        }
        catch (CliException e)
        {
            context.Error.WriteLine($"netmem: {e.Message}");
            if (e.ExitCode == ExitCodes.Usage)
            {
                context.Error.WriteLine("Try 'netmem --help' for more information.");
            }

            return e.ExitCode;
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
}
