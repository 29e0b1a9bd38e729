using Netmem.Benchmarks;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>
/// Runs each XdpReceiveBreakdownBenchmarks method as BenchmarkDotNet does (iteration setup,
/// method, iteration cleanup) with a small count, twice, so a broken benchmark fails here and
/// not in a long run. Needs root.
/// </summary>
public sealed class XdpReceiveBreakdownBenchmarkSmokeTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(1400)]
    public void Each_xdp_breakdown_benchmark_moves_exactly_the_datagrams_its_setup_or_method_sent(int size)
    {
        Requires.AfXdp();

        const int Count = 200;
        using var b = new XdpReceiveBreakdownBenchmarks { Size = size, Count = Count };
        b.Setup();
        for (int round = 0; round < 2; round++)
        {
            b.QueueInRxRing();
            Assert.Equal((long)Count * size, b.XdpNicQueued());
            b.QueueInSocket();
            Assert.Equal((long)Count * size, b.SocketReceiveFromQueued());
            b.PrepareXsk();
            Assert.Equal((long)Count * size, b.KernelSendToXsk());
            b.DrainXsk();
            b.PrepareSocket();
            Assert.Equal((long)Count * size, b.KernelSendToSocket());
            b.DrainSocket();
        }
    }
}
