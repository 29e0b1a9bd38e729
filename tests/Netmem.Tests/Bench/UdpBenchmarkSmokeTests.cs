using Netmem.Benchmarks;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>Runs each UdpReceiveBenchmarks method with a small count, so a broken benchmark fails here and not in a long run.</summary>
public sealed class UdpBenchmarkSmokeTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(1400)]
    public void Each_udp_benchmark_receives_every_datagram_it_sends(int size)
    {
        Requires.IoUring();

        const int Count = 300;
        using var b = new UdpReceiveBenchmarks { Size = size, Count = Count };
        b.Setup();
        for (int round = 0; round < 2; round++)
        {
            Assert.Equal((long)Count * size, b.UdpReceiverIoUring());
            Assert.Equal((long)Count * size, b.UdpReceiverRecvMmsg());
            Assert.Equal((long)Count * size, b.SocketReceiveFrom());
            Assert.Equal((long)Count * size, b.SocketReceiveFromAsyncSaea());
        }
    }
}
