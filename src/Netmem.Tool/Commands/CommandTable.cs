namespace Netmem.Tool.Commands;

/// <summary>
/// Every <c>netmem</c> command, by name. To add a command: write a class implementing
/// <see cref="ICommand"/> in its own file and add one line here. <see cref="Default"/> runs when
/// no command is named.
/// </summary>
internal static class CommandTable
{
    /// <summary>The command run by a bare <c>netmem</c>.</summary>
    public const string Default = "demo";

    public static readonly IReadOnlyList<ICommand> All =
    [
        // Owned by the SimNic/DevmemSocket work: DemoCommand is a placeholder until then.
        new DemoCommand(),

        // Owned by the TUN driver work: TunCommand reports "not available yet" until then.
        new TunCommand(),
        new TraceCommand(),
        new TopCommand(),
        new PoolsCommand(),
    ];

    public static ICommand? Find(string name) => All.FirstOrDefault(c => c.Name == name);
}
