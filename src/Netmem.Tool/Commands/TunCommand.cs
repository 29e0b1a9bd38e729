using System.CommandLine;
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
internal sealed class TunCommand : ToolCommand
{
    /// <summary>errno of an ioctl on a file that is not the device the request is for.</summary>
    private const int Enotty = 25;

    private readonly Option<int> _count = ToolOptions.Int("--count", "-n", "N", "datagrams to send through the kernel", 1, 10_000_000, 100_000);
    private readonly Option<int> _payload = ToolOptions.Int("--payload", null, "BYTES", "UDP payload bytes per datagram (at most the 1500-byte MTU less 28: 1472)", 1, 1472, 1400);
    private readonly Option<int> _queues = ToolOptions.Int("--queues", "-q", "N", "TUN queues, each bound to the region with one flow", 1, 16, 1);
    private readonly Option<bool> _json = ToolOptions.Json("print the result as one JSON object (snake_case keys; see the README) instead of the summary");
    private readonly Option<bool> _progress = ToolOptions.Flag("--progress", null, "print a progress line every second also when stdout is not a terminal");

    public TunCommand()
        : base("tun", "the demo on real kernel packets through /dev/net/tun, in a private network namespace (root)")
    {
        Options.Add(_count);
        Options.Add(_payload);
        Options.Add(_queues);
        Options.Add(_json);
        Options.Add(_progress);
    }

    public override IReadOnlyList<string> Examples =>
    [
        "sudo netmem tun",
        "sudo netmem tun --count 1000000 --payload 1472 --queues 2",
    ];

    public override int Run(ParseResult result, CommandContext context)
    {
        if (!NetNamespace.IsSupported)
        {
            context.Error.WriteLine($"netmem: tun cannot run here: {NetNamespace.UnsupportedReason}");
            return ExitCodes.Failure;
        }

        bool json = result.GetValue(_json);
        var run = new TunRunOptions
        {
            Count = result.GetValue(_count),
            Payload = result.GetValue(_payload),
            Queues = result.GetValue(_queues),
            Progress = !json && (result.GetValue(_progress) || context.IsInteractive),
        };

        return RunnerCommand.Report(
            context,
            "tun",
            () => TunRunner.Run(run, context.Out, context.Cancellation),
            json,
            r => JsonSerializer.Serialize(r, TunJsonContext.Default.TunRunResult),
            TunRunner.PrintSummary,
            Explain);
    }

    /// <summary>The one line to print for a failed system call; a <c>/dev/net/tun</c> that is not a TUN device is said in plain words.</summary>
    internal static string Explain(NativeException e) =>
        e.ErrorNumber == Enotty && e.Call.StartsWith("ioctl(TUNSETIFF", StringComparison.Ordinal)
            ? $"{TunFile.DevicePath} is not a TUN device (ioctl TUNSETIFF: ENOTTY): it must be the tun driver's character device 10,200 (mknod {TunFile.DevicePath} c 10 200)"
            : e.Message;
}
