using Netmem.Benchmarks;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>Runs each UdpReceiveBenchmarks method with a small count, so a broken benchmark fails here and not in a long run.</summary>
public sealed class UdpBenchmarkSmokeTests
{
    [Theory]
    [InlineData(64, LoopbackSend.Datagrams)]
    [InlineData(1400, LoopbackSend.Datagrams)]
    [InlineData(64, LoopbackSend.Gso)]
    [InlineData(1400, LoopbackSend.Gso)]
    public void Each_udp_benchmark_receives_every_datagram_it_sends(int size, LoopbackSend sender)
    {
        Requires.IoUring();

        const int Count = 300;
        using var b = new UdpReceiveBenchmarks { Size = size, Count = Count, Sender = sender };
        b.Setup();
        for (int round = 0; round < 2; round++)
        {
            Assert.Equal((long)Count * size, b.UdpReceiverIoUring());
            Assert.Equal((long)Count * size, b.UdpReceiverRecvMmsg());
            Assert.Equal((long)Count * size, b.UdpReceiverIoUringGro());
            Assert.Equal((long)Count * size, b.UdpReceiverRecvMmsgGro());
            Assert.Equal((long)Count * size, b.SocketReceiveFrom());
            Assert.Equal((long)Count * size, b.SocketReceiveFromAsyncSaea());
        }

        // GSO sends reach the Gro receivers coalesced; separate datagrams never do over loopback.
        Assert.Equal(sender == LoopbackSend.Gso, b.GroCoalesced > 0);
    }
}
