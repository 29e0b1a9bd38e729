namespace Netmem.Tool.Commands;

/// <summary>
/// Every <c>netmem</c> command. To add one: write a <see cref="ToolCommand"/> in its own file and
/// add <c>new MyCommand()</c> here; help, completion, typo suggestions and validation follow
/// from its options. <see cref="Default"/> runs when no command is named.
/// </summary>
internal static class CommandTable
{
    /// <summary>The command run by a bare <c>netmem</c>.</summary>
    public const string Default = "demo";

    /// <summary>Fresh instances of every command, in the order help lists them.</summary>
    public static IReadOnlyList<ToolCommand> Create() =>
    [
        new DemoCommand(),
        new TunCommand(),
        new XdpCommand(),
        new UdpCommand(),
        new RelayCommand(),
        new TraceCommand(),
        new TopCommand(),
        new PoolsCommand(),
        new CompletionCommand(),
    ];
}
