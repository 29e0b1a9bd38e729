using System.CommandLine;
using Netmem.Tool.Cli;
using Netmem.Tool.Relay;

namespace Netmem.Tool.Commands;

/// <summary>
/// <c>netmem relay</c>: a zero-copy UDP relay (see <see cref="RelayRunner"/>). Datagrams arrive
/// into a region bound for receive and for transmit, and each is sent to a second address from
/// the fragments it arrived in; its tokens go back only after the send's completion. The far end
/// verifies every payload byte. Runs on SimNic without setup, on TunNic in a private network
/// namespace, and on XdpNic over a veth pair between two private namespaces (both root; without
/// namespaces, <c>/dev/net/tun</c> or, for xdp, AF_XDP it fails at once, saying why).
/// </summary>
internal sealed class RelayCommand : ToolCommand
{
    private readonly Option<double?> _seconds = ToolOptions.Seconds("--seconds", "-s", "how long the generator runs, at most (with --count and no --seconds: until the count, up to 3600 s)", 0.1, 3600, 5);
    private readonly Option<int> _count = ToolOptions.Int("--count", "-n", "N", "datagrams to generate at most (0: as many as --seconds allows)", 0, int.MaxValue, 0);
    private readonly Option<int> _payload = ToolOptions.Int("--payload", null, "BYTES", "UDP payload bytes per datagram (a 9000-byte MTU less IPv4 and UDP headers; above 4096 a datagram spans several fragments)", 1, RelayRunner.MaxPayload, 1400);
    private readonly Option<int> _window = ToolOptions.Int("--window", null, "N", "datagrams generated and not yet verified or counted as dropped, at most", 1, 512, 256);
    private readonly Option<string> _driver = ToolOptions.OneOf("--driver", "the NIC: simnic (no setup), tun (root: a private network namespace, kernel UDP sockets at both ends; payload up to 1472 B) or xdp (root: a veth pair between two private namespaces, AF_XDP rx and tx from the same UMEM, kernel UDP sockets in the peer namespace; payload up to 1472 B)", "simnic", "simnic", "tun", "xdp");
    private readonly Option<bool> _json = ToolOptions.Json("print the result as one JSON object (snake_case keys; see docs/tool.md) instead of the summary");
    private readonly Option<bool> _progress = ToolOptions.Flag("--progress", null, "print a progress line every second also when stdout is not a terminal");

    public RelayCommand()
        : base("relay", "zero-copy UDP relay: datagrams sent on from the region fragments they arrived in, tokens back after each send's completion")
    {
        Options.Add(_seconds);
        Options.Add(_count);
        Options.Add(_payload);
        Options.Add(_window);
        Options.Add(_driver);
        Options.Add(_json);
        Options.Add(_progress);
    }

    public override IReadOnlyList<string> Examples =>
    [
        "netmem relay",
        "netmem relay --count 1000000 --payload 8000 --json",
        "sudo netmem relay --driver tun --count 100000",
        "sudo netmem relay --driver xdp --count 100000 --json",
    ];

    public override int Run(ParseResult result, CommandContext context)
    {
        string driver = result.GetValue(_driver)!;
        bool json = result.GetValue(_json);
        int count = result.GetValue(_count);
        double seconds = count > 0 && result.GetResult(_seconds) is not { Implicit: false } ? 3600 : result.GetValue(_seconds)!.Value;
        var run = new RelayRunOptions
        {
            Driver = driver switch
            {
                "tun" => RelayDriver.Tun,
                "xdp" => RelayDriver.Xdp,
                _ => RelayDriver.SimNic,
            },
            Seconds = seconds,
            Count = count,
            Payload = result.GetValue(_payload),
            Window = result.GetValue(_window),
            Progress = !json && (result.GetValue(_progress) || context.IsInteractive),
        };

        return RunnerCommand.Report(
            context,
            "relay",
            () => RelayRunner.Run(run, context.Out, context.Cancellation),
            json,
            RelayRunner.ToJson,
            RelayRunner.PrintSummary);
    }
}
