using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Netmem.Tool.Cli;

/// <summary>
/// Builds the options of <c>netmem</c> commands: numeric ones range-checked with one message
/// shape (<c>option '--seconds' expects ... from A to B, got 'X'</c>), and every description
/// ending with its range and default, so <c>--help</c> says what a value may be.
/// </summary>
internal static class ToolOptions
{
    /// <summary>An integer option with an inclusive range and, optionally, a default.</summary>
    public static Option<int> Int(string name, string? alias, string valueName, string description, int min, int max, int? defaultValue = null)
    {
        Option<int> o = Create<int>(name, alias, valueName, Describe(description, $"{min}..{max}"));
        o.CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : string.Empty;
            if (!long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) || v < min || v > max)
            {
                r.AddError($"option '{name}' expects an integer from {min} to {max}, got '{text}'");
                return 0;
            }

            return (int)v;
        };
        if (defaultValue is { } d)
        {
            o.DefaultValueFactory = _ => d;
        }

        return o;
    }

    /// <summary>A duration in seconds (decimals allowed), finite and within an inclusive range; null when not given and without default.</summary>
    public static Option<double?> Seconds(string name, string? alias, string description, double min, double max, double? defaultValue = null)
    {
        string range = string.Create(CultureInfo.InvariantCulture, $"{min}..{max} s");
        Option<double?> o = Create<double?>(name, alias, "SECONDS", Describe(description, range));
        o.CustomParser = r =>
        {
            string text = r.Tokens.Count > 0 ? r.Tokens[0].Value : string.Empty;
            if (!double.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double s) || !double.IsFinite(s) || s < min || s > max)
            {
                r.AddError(string.Create(CultureInfo.InvariantCulture, $"option '{name}' expects a number of seconds from {min} to {max}, got '{text}'"));
                return null;
            }

            return s;
        };
        if (defaultValue is { } d)
        {
            o.DefaultValueFactory = _ => d;
        }

        return o;
    }

    /// <summary>A flag.</summary>
    public static Option<bool> Flag(string name, string? alias, string description) => Create<bool>(name, alias, null, description);

    /// <summary>A text option whose value must be one of <paramref name="values"/> (offered by tab completion).</summary>
    public static Option<string> OneOf(string name, string description, string defaultValue, params string[] values)
    {
        Option<string> o = Create<string>(name, null, null, description);
        o.DefaultValueFactory = _ => defaultValue;
        o.AcceptOnlyFromAmong(values);
        return o;
    }

    /// <summary>A free text option.</summary>
    public static Option<string?> Text(string name, string? alias, string valueName, string description) => Create<string?>(name, alias, valueName, description);

    /// <summary><c>--pid, -p</c>: the target process; required.</summary>
    public static Option<int> Pid()
    {
        Option<int> o = Int("--pid", "-p", "PID", "id of the .NET process to attach to (its diagnostic port)", 1, int.MaxValue);
        o.Required = true;
        return o;
    }

    /// <summary><c>--json</c>.</summary>
    public static Option<bool> Json(string what) => Flag("--json", null, what);

    /// <summary>
    /// <c>--timeout</c>: how long to wait for the Netmem provider to answer before saying the
    /// process has not loaded Netmem.
    /// </summary>
    public static Option<double?> AttachTimeout() =>
        Seconds("--timeout", null, "seconds to wait for the process's Netmem provider to answer before giving up (exit 4)", 0.5, 600, 10);

    private static Option<T> Create<T>(string name, string? alias, string? valueName, string description)
    {
        Option<T> o = alias is null ? new Option<T>(name) : new Option<T>(name, alias);
        o.Description = description;
        if (valueName is not null)
        {
            o.HelpName = valueName;
        }

        return o;
    }

    /// <summary>The help text: meaning and range; the library adds the default.</summary>
    private static string Describe(string description, string range) => $"{description} (range {range})";
}
