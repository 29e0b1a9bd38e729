using System.CommandLine;
using Netmem.Tool.Cli;

namespace Netmem.Tool.Commands;

/// <summary>
/// <c>netmem completion bash</c>: prints a shell function that completes <c>netmem</c> command
/// lines by asking <c>netmem</c> itself, through System.CommandLine's <c>[suggest]</c> directive,
/// so commands, options and option values (<c>--pid</c> excepted) complete from the same
/// definitions that parse them. Load it with <c>source &lt;(netmem completion bash)</c>.
/// </summary>
internal sealed class CompletionCommand : ToolCommand
{
    private readonly Argument<string> _shell = new("shell")
    {
        Description = "the shell to print the completion script for",
        DefaultValueFactory = _ => "bash",
    };

    public CompletionCommand()
        : base("completion", "print a tab-completion script for bash or zsh")
    {
        _shell.AcceptOnlyFromAmong("bash", "zsh");
        Arguments.Add(_shell);
    }

    public override IReadOnlyList<string> Examples =>
    [
        "source <(netmem completion bash)   # in ~/.bashrc",
        "source <(netmem completion zsh)    # in ~/.zshrc",
    ];

    public override int Run(ParseResult result, CommandContext context)
    {
        string shell = result.GetValue(_shell)!;
        context.Out.Write(shell == "zsh" ? "autoload -U +X bashcompinit && bashcompinit\n" + Bash : Bash);
        return ExitCodes.Ok;
    }

    /// <summary>
    /// The bash function: hands the line and the cursor position (past the program name) to
    /// <c>netmem [suggest:N]</c>, which prints one candidate a line.
    /// </summary>
    internal const string Bash = """
        # netmem tab completion: asks netmem itself (System.CommandLine's [suggest] directive).
        _netmem_complete()
        {
            local IFS=$'\n'
            local line="${COMP_LINE:0:COMP_POINT}"
            local args="${line#*[[:space:]]}"
            [[ "$args" == "$line" ]] && args=""
            local candidates
            candidates=$("${COMP_WORDS[0]}" "[suggest:${#args}]" "$args" 2>/dev/null)
            COMPREPLY=( $(compgen -W "$candidates" -- "${COMP_WORDS[COMP_CWORD]}") )
        }
        complete -o default -F _netmem_complete netmem

        """;
}
