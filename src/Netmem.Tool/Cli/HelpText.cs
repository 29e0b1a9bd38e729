using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using System.Globalization;
using Netmem.Tool.Commands;

namespace Netmem.Tool.Cli;

/// <summary>
/// The help System.CommandLine writes (usage, commands, each option with its meaning, range and
/// default), followed by examples and the exit codes.
/// </summary>
internal static class HelpText
{
    /// <summary>Makes <c>--help</c> of every command print the examples and exit codes after the library's help.</summary>
    public static void Install(RootCommand root)
    {
        HelpOption help = root.Options.OfType<HelpOption>().Single();
        help.Action = new WithExamples((CommandLineAction)help.Action!);
    }

    /// <summary>Runs the library's help, then adds the examples and exit codes.</summary>
    private sealed class WithExamples(CommandLineAction inner) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            ((SynchronousCommandLineAction)inner).Invoke(parseResult);
            TextWriter output = parseResult.InvocationConfiguration.Output;
            Command command = parseResult.CommandResult.Command;
            IEnumerable<string> lines = command is ToolCommand c
                ? c.Examples
                : command.Subcommands.OfType<ToolCommand>().Select(s => s.Examples[0]);
            output.WriteLine("Examples:");
            foreach (string line in lines)
            {
                output.WriteLine("  " + line);
            }

            output.WriteLine();
            output.WriteLine("Exit codes:");
            foreach ((int code, string meaning) in ExitCodes.All)
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {code}  {meaning}"));
            }

            return ExitCodes.Ok;
        }
    }
}
