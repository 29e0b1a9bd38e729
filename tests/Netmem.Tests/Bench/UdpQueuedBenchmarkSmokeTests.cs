using Netmem.Benchmarks;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>
/// Runs each UdpQueuedReceiveBenchmarks method as BenchmarkDotNet does (its iteration setup,
/// the method, its iteration cleanup) with a count that fits a default receive buffer, so a
/// broken benchmark fails here and not in a long run.
/// </summary>
public sealed class UdpQueuedBenchmarkSmokeTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(1400)]
    public void Each_queued_udp_benchmark_drains_exactly_the_datagrams_its_setup_queued(int size)
    {
        Requires.IoUring();

        const int Count = 128;
        using var b = new UdpQueuedReceiveBenchmarks { Size = size, Count = Count };
        b.Setup();
        for (int round = 0; round < 2; round++)
        {
            b.QueueForIoUring();
            Assert.Equal((long)Count * size, b.UdpReceiverIoUring());
            b.DisposeUring();
            b.QueueForRecvMmsg();
            Assert.Equal((long)Count * size, b.UdpReceiverRecvMmsg());
            b.QueueForReceiveFrom();
            Assert.Equal((long)Count * size, b.SocketReceiveFrom());
            b.QueueForReceiveFromAsync();
            Assert.Equal((long)Count * size, b.SocketReceiveFromAsyncSaea());
        }
    }

    [Fact]
    public void A_setup_whose_socket_cannot_hold_every_datagram_fails_and_says_how_many_it_holds()
    {
        Requires.IoUring();

        // 65536 datagrams of 1400 B (about 150 MB of truesize) cannot fit the 32 MB receive buffer the benchmark asks for.
        using var b = new UdpQueuedReceiveBenchmarks { Size = 1400, Count = 1 << 16 };
        b.Setup();
        var e = Assert.Throws<InvalidOperationException>(b.QueueForReceiveFrom);
        Assert.Contains("ReceiveFrom: 65536 datagrams of truesize", e.Message);
        Assert.Contains("The receive buffer is too small", e.Message);
    }
}
