using Netmem.Benchmarks;
using Netmem.Native;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>Runs each TunBenchmarks method once with a small count, so a broken benchmark fails here and not in a long run. Needs root.</summary>
public sealed class TunBenchmarkSmokeTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(1400)]
    public void Each_tun_benchmark_receives_every_datagram_it_sends(int size)
    {
        Requires.NetNamespaces();

        const int Count = 300;
        var b = new TunBenchmarks { Size = size, Count = Count };
        b.Setup();
        try
        {
            Assert.Equal((long)Count * size, b.TunNicDevmem());
            Assert.Equal((long)Count * size, b.SocketReceiveFrom());
            Assert.Equal((long)Count * size, b.TunNicDevmem());
            Assert.Equal((long)Count * size, b.SocketReceiveFrom());
        }
        finally
        {
            b.Cleanup();
        }
    }

    [Fact]
    public void Tun_benchmark_setup_fails_fast_with_the_reason_when_unsupported()
    {
        Requires.Unprivileged();

        var e = Assert.Throws<InvalidOperationException>(() => new TunBenchmarks { Size = 64 }.Setup());
        Assert.Contains("need root", e.Message, StringComparison.Ordinal);
    }
}
