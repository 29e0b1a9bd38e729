using System.CommandLine;
using Netmem.Drivers.Udp;
using Netmem.Tool.Cli;
using Netmem.Tool.UdpDemo;

namespace Netmem.Tool.Commands;

/// <summary>
/// <c>netmem udp</c>: unprivileged UDP receive into pool memory. One or more
/// <see cref="UdpReceiver"/>s on loopback (sharing the port through SO_REUSEPORT) take datagrams
/// from sender threads through io_uring provided-buffer rings fed by their page pools (or
/// recvmmsg), every payload verified, and print the demo's summary with the kernel's socket drops.
/// </summary>
internal sealed class UdpCommand : ToolCommand
{
    private readonly Option<int> _count = ToolOptions.Int("--count", "-n", "N", "datagrams to send in all (split over the senders)", 1, 100_000_000, 200_000);
    private readonly Option<int> _payload = ToolOptions.Int("--payload", null, "BYTES", "UDP payload bytes per datagram", 8, 65_507, 1400);
    private readonly Option<int> _senders = ToolOptions.Int("--senders", null, "N", "sender threads, each with its own socket", 1, 64, 2);
    private readonly Option<int> _receivers = ToolOptions.Int("--receivers", "-r", "N", "receivers sharing the port through SO_REUSEPORT, one thread and pool each", 1, 64, 1);
    private readonly Option<string> _path = ToolOptions.OneOf("--path", "the receive path: io_uring provided buffers, recvmmsg, or auto (io_uring where the kernel allows it)", "auto", "auto", "uring", "recvmmsg");
    private readonly Option<bool> _region = ToolOptions.Flag("--region", null, "receive into a bound memfd region (one per receiver) instead of system pages");
    private readonly Option<bool> _gro = ToolOptions.Flag("--gro", null, "the receivers ask for UDP_GRO: a GSO send arrives as one buffer, split into one record per datagram");
    private readonly Option<int> _gso = ToolOptions.Int("--gso", null, "N", "datagrams per send; above 1 the senders use UDP GSO (UDP_SEGMENT)", 1, 64, 1);
    private readonly Option<bool> _ipv6 = ToolOptions.Flag("--ipv6", "-6", "bind to ::1 instead of 127.0.0.1");
    private readonly Option<bool> _json = ToolOptions.Json("print the result as one JSON object (snake_case keys; see docs/tool.md) instead of the summary");
    private readonly Option<bool> _progress = ToolOptions.Flag("--progress", null, "print a progress line every second also when stdout is not a terminal");

    public UdpCommand()
        : base("udp", "unprivileged UDP receive on loopback into pool memory through io_uring provided buffers (or recvmmsg)")
    {
        Options.Add(_count);
        Options.Add(_payload);
        Options.Add(_senders);
        Options.Add(_receivers);
        Options.Add(_path);
        Options.Add(_region);
        Options.Add(_gro);
        Options.Add(_gso);
        Options.Add(_ipv6);
        Options.Add(_json);
        Options.Add(_progress);
    }

    public override IReadOnlyList<string> Examples =>
    [
        "netmem udp",
        "netmem udp --count 1000000 --payload 64 --receivers 2 --path recvmmsg",
        "netmem udp --region --json",
        "netmem udp --payload 64 --gso 64 --gro",
    ];

    public override int Run(ParseResult result, CommandContext context)
    {
        bool json = result.GetValue(_json);
        var run = new UdpRunOptions
        {
            Count = result.GetValue(_count),
            Payload = result.GetValue(_payload),
            Senders = result.GetValue(_senders),
            Receivers = result.GetValue(_receivers),
            Path = result.GetValue(_path) switch
            {
                "uring" => UdpReceivePath.IoUring,
                "recvmmsg" => UdpReceivePath.RecvMmsg,
                _ => UdpReceivePath.Auto,
            },
            Region = result.GetValue(_region),
            Gro = result.GetValue(_gro),
            Gso = result.GetValue(_gso),
            IPv6 = result.GetValue(_ipv6),
            Progress = !json && (result.GetValue(_progress) || context.IsInteractive),
        };

        return RunnerCommand.Report(
            context,
            "udp",
            () => UdpRunner.Run(run, context.Out, context.Cancellation),
            json,
            UdpRunner.ToJson,
            UdpRunner.PrintSummary);
    }
}
