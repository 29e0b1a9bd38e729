using System.CommandLine;
using System.Text.Json;
using Netmem.Native;
using Netmem.Tool.Cli;
using Netmem.Tool.XdpDemo;

namespace Netmem.Tool.Commands;

/// <summary>
/// <c>netmem xdp</c>: the demo on AF_XDP. Creates two network namespaces of its own joined by a
/// veth pair, runs an XdpNic on one end with its queue bound to a memfd region (the region is
/// the UMEM), sends datagrams through the kernel from the peer namespace, verifies every payload
/// byte through the region, tears everything down, and prints the summary with the kernel's veth
/// and XSK counters. Needs root and a kernel with AF_XDP (5.9 or later).
/// </summary>
internal sealed class XdpCommand : ToolCommand
{
    private readonly Option<int> _count = ToolOptions.Int("--count", "-n", "N", "datagrams to send through the kernel from the peer namespace", 1, 10_000_000, 100_000);
    private readonly Option<int> _payload = ToolOptions.Int("--payload", null, "BYTES", "UDP payload bytes per datagram (at most the MTU less 28)", 1, 2972, 1400);
    private readonly Option<int> _mtu = ToolOptions.Int("--mtu", null, "BYTES", "the veth pair's MTU (a frame must fit a 4 KiB UMEM chunk after the kernel's headroom)", 1280, 3000, 1500);
    private readonly Option<bool> _copy = ToolOptions.Flag("--copy", null, "bind the XSK in copy mode without trying zero-copy");
    private readonly Option<bool> _generic = ToolOptions.Flag("--generic", null, "attach the XDP program in generic (SKB) mode without trying native (driver) XDP");
    private readonly Option<bool> _json = ToolOptions.Json("print the result as one JSON object (snake_case keys; see docs/tool.md) instead of the summary");
    private readonly Option<bool> _progress = ToolOptions.Flag("--progress", null, "print a progress line every second also when stdout is not a terminal");

    public XdpCommand()
        : base("xdp", "the demo on AF_XDP: the bound region is the UMEM, kernel packets over a veth pair in private namespaces (root)")
    {
        Options.Add(_count);
        Options.Add(_payload);
        Options.Add(_mtu);
        Options.Add(_copy);
        Options.Add(_generic);
        Options.Add(_json);
        Options.Add(_progress);
    }

    public override IReadOnlyList<string> Examples =>
    [
        "sudo netmem xdp",
        "sudo netmem xdp --count 1000000 --payload 64 --json",
    ];

    public override int Run(ParseResult result, CommandContext context)
    {
        if (!NetNamespace.IsSupported)
        {
            context.Error.WriteLine($"netmem: xdp cannot run here: {NetNamespace.UnsupportedReason}");
            return ExitCodes.Failure;
        }

        bool json = result.GetValue(_json);
        var run = new XdpRunOptions
        {
            Count = result.GetValue(_count),
            Payload = result.GetValue(_payload),
            Mtu = result.GetValue(_mtu),
            CopyOnly = result.GetValue(_copy),
            GenericXdp = result.GetValue(_generic),
            Progress = !json && (result.GetValue(_progress) || context.IsInteractive),
        };

        return RunnerCommand.Report(
            context,
            "xdp",
            () => XdpRunner.Run(run, context.Out, context.Cancellation),
            json,
            r => JsonSerializer.Serialize(r, XdpJsonContext.Default.XdpRunResult),
            XdpRunner.PrintSummary);
    }
}
