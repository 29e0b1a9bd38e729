using Netmem.Benchmarks;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>Runs each XdpBenchmarks method once with a small count, so a broken benchmark fails here and not in a long run. Needs root.</summary>
public sealed class XdpBenchmarkSmokeTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(1400)]
    public void Each_xdp_benchmark_receives_every_datagram_it_sends(int size)
    {
        Requires.AfXdp();

        const int Count = 300;
        var b = new XdpBenchmarks { Size = size, Count = Count };
        b.Setup();
        try
        {
            Assert.Equal((long)Count * size, b.XdpNicDevmem());
            Assert.Equal((long)Count * size, b.TunNicDevmem());
            Assert.Equal((long)Count * size, b.SocketReceiveFrom());
            Assert.Equal((long)Count * size, b.XdpNicDevmem());
        }
        finally
        {
            b.Cleanup();
        }
    }
}
