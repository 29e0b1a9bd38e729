using Netmem.Tool.Cli;

namespace Netmem.Tool.Commands;

/// <summary>
/// PLACEHOLDER, owned by the TUN driver work: receives real kernel packets through
/// <c>/dev/net/tun</c> into a page pool. Until the TunNic driver lands it reports that it is
/// not available and exits 1. Replace this class's body (keep <see cref="Name"/>) and add the
/// options it needs to <see cref="CommandLine.Options"/>.
/// </summary>
internal sealed class TunCommand : ICommand
{
    public string Name => "tun";

    public string Summary => "receive real packets through /dev/net/tun (not available yet)";

    public string Usage => "netmem tun";

    public OptionKinds Options => OptionKinds.None;

    public IReadOnlyList<string> Examples => ["netmem tun"];

    public int Run(CommandOptions options, CommandContext context)
    {
        context.Error.WriteLine("netmem: 'tun' is not available yet (the TUN driver is being written)");
        return ExitCodes.Failure;
    }
}
