using System.Text.Json;
using Netmem.Native;
using Netmem.Tool.Cli;
using Netmem.Tool.TunDemo;

namespace Netmem.Tool.Commands;

/// <summary>
/// <c>netmem tun</c>: the demo on real packets. Creates a network namespace of its own with a
/// TUN device, binds a memfd region to the TUN queues, sends datagrams through the kernel to an
/// address routed to the TUN device (inside that namespace only), verifies every payload byte
/// through the region, tears everything down, and prints the summary with the kernel's counters.
/// Needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN), <c>/dev/net/tun</c> and <c>ip</c>.
/// </summary>
internal sealed class TunCommand : ICommand
{
    public string Name => "tun";

    public string Summary => "the demo on real kernel packets through /dev/net/tun, in a private network namespace (root)";

    public string Usage => "netmem tun [--count N] [--payload B] [--queues N] [--json]";

    public OptionKinds Options => OptionKinds.Count | OptionKinds.Payload | OptionKinds.Queues | OptionKinds.Json;

    public IReadOnlyList<string> Examples =>
    [
        "sudo netmem tun",
        "sudo netmem tun --count 1000000 --payload 1472 --queues 2",
    ];

    public int Run(CommandOptions options, CommandContext context)
    {
        if (!NetNamespace.IsSupported)
        {
            context.Error.WriteLine($"netmem: tun cannot run here: {NetNamespace.UnsupportedReason}");
            return ExitCodes.Failure;
        }

        var run = new TunRunOptions
        {
            Count = options.Count ?? 100_000,
            Payload = options.Payload ?? 1400,
            Queues = options.Queues ?? 1,
            Progress = !options.Json,
        };

        TunRunResult result;
        try
        {
            result = TunRunner.Run(run, context.Out, context.Cancellation);
        }
        catch (ArgumentException e)
        {
            throw CliException.Usage(e.Message);
        }
        catch (PlatformNotSupportedException e)
        {
            context.Error.WriteLine("netmem: tun cannot run here: " + e.Message);
            return ExitCodes.Failure;
        }

        if (options.Json)
        {
            context.Out.WriteLine(JsonSerializer.Serialize(result, TunJsonContext.Default.TunRunResult));
        }
        else
        {
            TunRunner.PrintSummary(result, context.Out);
        }

        return result.Ok ? ExitCodes.Ok : ExitCodes.Failure;
    }
}
