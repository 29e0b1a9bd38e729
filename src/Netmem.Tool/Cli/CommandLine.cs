using System.Globalization;

namespace Netmem.Tool.Cli;

/// <summary>The options a command may take; each command lists the ones it accepts.</summary>
[Flags]
internal enum OptionKinds
{
    None = 0,
    Pid = 1,
    Verbose = 2,
    Json = 4,
    Seconds = 8,
    Wait = 16,
    Payload = 32,
    Queues = 64,
    Flows = 128,
    Count = 256,
}

/// <summary>Parsed options of one invocation. Unset values are null or false.</summary>
internal sealed class CommandOptions
{
    public int? Pid { get; set; }

    public bool Verbose { get; set; }

    public bool Json { get; set; }

    /// <summary>How long to run (trace, top, demo --wait) or to wait for an answer (pools).</summary>
    public TimeSpan? Duration { get; set; }

    public bool Wait { get; set; }

    /// <summary>UDP payload bytes (demo, tun).</summary>
    public int? Payload { get; set; }

    /// <summary>Rx queues (demo, tun).</summary>
    public int? Queues { get; set; }

    /// <summary>Flows (demo).</summary>
    public int? Flows { get; set; }

    /// <summary>Datagrams to send (tun).</summary>
    public int? Count { get; set; }

    public bool Help { get; set; }

    /// <summary>The pid, or a usage error naming <paramref name="command"/> when it is missing.</summary>
    public int RequirePid(string command) =>
        Pid ?? throw CliException.Usage($"'{command}' needs --pid P (the id of a process using Netmem)");
}

/// <summary>
/// The hand-written parser: <c>netmem [command] [options]</c>. Options are accepted as
/// <c>--name value</c> or <c>--name=value</c>, anywhere after the command; <c>--</c> ends options.
/// The first argument that is not an option names the command; none means <c>demo</c>.
/// </summary>
internal static class CommandLine
{
    /// <summary>Every option, its kind, whether it takes a value, and its help line.</summary>
    public static readonly (string Name, string? Short, OptionKinds Kind, string? Value, string Help)[] Options =
    [
        ("--pid", "-p", OptionKinds.Pid, "P", "id of the process to attach to"),
        ("--verbose", "-v", OptionKinds.Verbose, null, "trace: add per-netmem hold/release events (high volume)"),
        ("--json", null, OptionKinds.Json, null, "print JSON instead of a table (pools; trace prints JSON lines)"),
        ("--seconds", "-s", OptionKinds.Seconds, "N", "stop after N seconds (trace, top, demo --wait); pools: answer timeout"),
        ("--wait", null, OptionKinds.Wait, null, "demo: keep running (rebinding queue 1 every second) until Ctrl+C, SIGTERM, end of stdin or --seconds"),
        ("--payload", null, OptionKinds.Payload, "B", "demo, tun: UDP payload bytes per datagram"),
        ("--queues", "-q", OptionKinds.Queues, "N", "demo: rx queues (queue 0 system pages, the rest bound to the region); tun: TUN queues"),
        ("--flows", null, OptionKinds.Flows, "N", "demo: flows, one socket and consumer thread each"),
        ("--count", "-n", OptionKinds.Count, "N", "tun: datagrams to send through the kernel"),
    ];

    /// <summary>Splits <paramref name="args"/> into the command name (or null) and the rest.</summary>
    public static (string? Command, string[] Arguments) SplitCommand(string[] args)
    {
        if (args.Length > 0 && !args[0].StartsWith('-'))
        {
            return (args[0], args[1..]);
        }

        return (null, args);
    }

    /// <summary>Parses the options after the command, refusing any that <paramref name="accepted"/> does not list.</summary>
    public static CommandOptions Parse(string command, string[] args, OptionKinds accepted)
    {
        var o = new CommandOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            if (arg == "--")
            {
                if (i + 1 < args.Length)
                {
                    throw CliException.Usage($"unexpected argument '{args[i + 1]}' for '{command}'");
                }

                break;
            }

            if (arg is "--help" or "-h")
            {
                o.Help = true;
                continue;
            }

            if (!arg.StartsWith('-'))
            {
                throw CliException.Usage($"unexpected argument '{arg}' for '{command}'");
            }

            string name = arg;
            string? inlineValue = null;
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0)
            {
                name = arg[..eq];
                inlineValue = arg[(eq + 1)..];
            }

            (string Name, string? Short, OptionKinds Kind, string? Value, string Help) spec = Array.Find(Options, s => s.Name == name || s.Short == name);
            if (spec.Name is null || (accepted & spec.Kind) == 0)
            {
                throw CliException.Usage($"unknown option '{name}' for '{command}'");
            }

            string? value = null;
            if (spec.Value is not null)
            {
                if (inlineValue is not null)
                {
                    value = inlineValue;
                }
                else if (i + 1 < args.Length)
                {
                    value = args[++i];
                }
                else
                {
                    throw CliException.Usage($"option '{spec.Name}' needs a value ({spec.Value})");
                }
            }
            else if (inlineValue is not null)
            {
                throw CliException.Usage($"option '{spec.Name}' takes no value");
            }

            switch (spec.Kind)
            {
                case OptionKinds.Pid:
                    o.Pid = ParsePositiveInt(spec.Name, value!);
                    break;
                case OptionKinds.Verbose:
                    o.Verbose = true;
                    break;
                case OptionKinds.Json:
                    o.Json = true;
                    break;
                case OptionKinds.Seconds:
                    o.Duration = TimeSpan.FromSeconds(ParsePositiveSeconds(spec.Name, value!));
                    break;
                case OptionKinds.Wait:
                    o.Wait = true;
                    break;
                case OptionKinds.Payload:
                    o.Payload = ParsePositiveInt(spec.Name, value!);
                    break;
                case OptionKinds.Queues:
                    o.Queues = ParsePositiveInt(spec.Name, value!);
                    break;
                case OptionKinds.Flows:
                    o.Flows = ParsePositiveInt(spec.Name, value!);
                    break;
                case OptionKinds.Count:
                    o.Count = ParsePositiveInt(spec.Name, value!);
                    break;
            }
        }

        return o;
    }

    private static int ParsePositiveInt(string option, string value)
    {
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out int n) || n <= 0)
        {
            throw CliException.Usage($"option '{option}' expects a positive integer, got '{value}'");
        }

        return n;
    }

    private static double ParsePositiveSeconds(string option, string value)
    {
        if (!double.TryParse(value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double s) || s <= 0 || s > int.MaxValue)
        {
            throw CliException.Usage($"option '{option}' expects a positive number of seconds, got '{value}'");
        }

        return s;
    }
}
