using System.Net;
using Netmem.Drivers.Udp;
using Xunit;

namespace Netmem.Tests.UdpRx;

/// <summary>The README's "Receive UDP with Netmem" example, as printed, compiles and runs.</summary>
public sealed class UdpReadmeExampleTests
{
    [Fact]
    public void The_readme_example_receives_a_datagram_and_returns_it()
    {
        int received = Example(sendOne: true);
        Assert.Equal(1, received);
    }

    private static int Example(bool sendOne)
    {
        // ---- README block, verbatim (Console output aside) ----
        using var rx = new UdpReceiver(new UdpReceiverOptions
        {
            LocalEndpoint = new IPEndPoint(IPAddress.Loopback, 0),   // port 0: the kernel picks one
            ReusePort = true,                                         // one receiver per core may share the port
        });
        Console.WriteLine($"receiving on {rx.LocalEndpoint} via {rx.Path}");
        if (sendOne)
        {
            UdpTraffic.SendNow(rx.LocalEndpoint, 1, _ => 100);
        }

        var batch = new UdpDatagram[64];
        int n = rx.Receive(batch, timeoutMs: 1000);        // or: await rx.ReceiveAsync(batch, cancellationToken)
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<byte> payload = batch[i].Payload;  // where the kernel wrote it, in a pool page
            UdpEndpoint from = batch[i].Source;             // a struct: no IPEndPoint per datagram
            bool cut = batch[i].Truncated;                  // larger than a buffer (rx.MaxPayload)
            Assert.Equal(100, payload.Length);
            Assert.False(cut);
            Assert.Equal(System.Net.Sockets.AddressFamily.InterNetwork, from.Family);
        }

        rx.Return(batch.AsSpan(0, n));                     // the buffers go back to the pool, and on to the kernel
        Assert.Equal(0, rx.Held);
        return n;
    }
}
