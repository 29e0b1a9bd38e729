using Netmem.Native;
using Netmem.Tool.Cli;
using Netmem.Tool.Demo;

namespace Netmem.Tool.Commands;

/// <summary>
/// What <c>tun</c>, <c>xdp</c>, <c>udp</c> and <c>relay</c> share around their engine: an engine's argument
/// error is a usage error (exit 2), a machine that cannot run it and a refused system call are one
/// line on stderr (exit 1), and the result is printed as the summary or as one JSON object, the
/// exit code saying whether every check held.
/// </summary>
internal static class RunnerCommand
{
    /// <summary>Runs <paramref name="run"/> and reports its result; see the type's summary.</summary>
    /// <param name="context">Where output and errors go.</param>
    /// <param name="name">The command's name, for the messages.</param>
    /// <param name="run">The engine's run.</param>
    /// <param name="json">Print the result as JSON instead of the summary.</param>
    /// <param name="toJson">The result as one JSON object.</param>
    /// <param name="printSummary">Prints the human summary.</param>
    /// <param name="explain">The line to print for a refused system call (defaults to its message).</param>
    public static int Report<TResult>(
        CommandContext context,
        string name,
        Func<TResult> run,
        bool json,
        Func<TResult, string> toJson,
        Action<TResult, TextWriter> printSummary,
        Func<NativeException, string>? explain = null)
        where TResult : DemoResult
    {
        TResult outcome;
        try
        {
            outcome = run();
        }
        catch (ArgumentException e)
        {
            throw CliException.Usage(e.Message);
        }
        catch (PlatformNotSupportedException e)
        {
            context.Error.WriteLine($"netmem: {name} cannot run here: {e.Message}");
            return ExitCodes.Failure;
        }
        catch (NativeException e)
        {
            context.Error.WriteLine($"netmem: {name}: {(explain is null ? e.Message : explain(e))}");
            return ExitCodes.Failure;
        }

        if (json)
        {
            context.Out.WriteLine(toJson(outcome));
        }
        else
        {
            printSummary(outcome, context.Out);
        }

        return outcome.Ok ? ExitCodes.Ok : ExitCodes.Failure;
    }
}
