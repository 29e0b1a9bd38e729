using System.Text;
using Netmem.Tool.Commands;

namespace Netmem.Tool.Cli;

/// <summary>The text of <c>netmem --help</c> and <c>netmem COMMAND --help</c>.</summary>
internal static class Help
{
    public static string General()
    {
        var sb = new StringBuilder();
        sb.AppendLine("netmem - Netmem page pools: run a demo, trace and watch pools in a running .NET process");
        sb.AppendLine();
        sb.AppendLine("Usage:");
        sb.AppendLine("  netmem [COMMAND] [OPTIONS]");
        sb.AppendLine("  netmem COMMAND --help");
        sb.AppendLine();
        sb.AppendLine("Commands:");
        foreach (ICommand c in CommandTable.All)
        {
            sb.AppendLine($"  {c.Name,-8} {c.Summary}");
        }

        sb.AppendLine($"  (no command runs '{CommandTable.Default}')");
        sb.AppendLine();
        sb.AppendLine("Options:");
        AppendOptions(sb, OptionKinds.Pid | OptionKinds.Verbose | OptionKinds.Json | OptionKinds.Seconds | OptionKinds.Wait);
        sb.AppendLine("  -h, --help           show help (for a command: netmem COMMAND --help)");
        sb.AppendLine("      --version        print the version");
        sb.AppendLine();
        sb.AppendLine("Examples:");
        foreach (ICommand c in CommandTable.All)
        {
            sb.AppendLine($"  {c.Examples[0]}");
        }

        sb.AppendLine();
        AppendExitCodes(sb);
        return sb.ToString();
    }

    public static string For(ICommand command)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"netmem {command.Name} - {command.Summary}");
        sb.AppendLine();
        sb.AppendLine("Usage:");
        sb.AppendLine($"  {command.Usage}");
        sb.AppendLine();
        sb.AppendLine("Options:");
        AppendOptions(sb, command.Options);
        sb.AppendLine("  -h, --help           show this help");
        sb.AppendLine();
        sb.AppendLine("Examples:");
        foreach (string e in command.Examples)
        {
            sb.AppendLine($"  {e}");
        }

        sb.AppendLine();
        AppendExitCodes(sb);
        return sb.ToString();
    }

    private static void AppendOptions(StringBuilder sb, OptionKinds kinds)
    {
        foreach ((string name, string? shortName, OptionKinds kind, string? value, string help) in CommandLine.Options)
        {
            if ((kinds & kind) == 0)
            {
                continue;
            }

            string flag = (shortName is null ? "    " : shortName + ", ") + name + (value is null ? string.Empty : " " + value);
            sb.AppendLine($"  {flag,-20} {help}");
        }
    }

    private static void AppendExitCodes(StringBuilder sb)
    {
        sb.AppendLine("Exit codes:");
        sb.AppendLine("  0 success   1 failure   2 usage error   3 no such process   4 process has not loaded Netmem");
    }
}
