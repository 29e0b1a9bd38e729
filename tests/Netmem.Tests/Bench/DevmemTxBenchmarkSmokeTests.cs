using System.Reflection;
using BenchmarkDotNet.Attributes;
using Netmem.Benchmarks;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>Runs each DevmemTxBenchmarks method with a small count, so a broken benchmark fails here and not in a long run. Needs root.</summary>
public sealed class DevmemTxBenchmarkSmokeTests
{
    [Theory]
    [InlineData(64)]
    [InlineData(1400)]
    public void Each_tx_benchmark_sends_every_datagram_and_the_devmem_paths_allocate_nothing(int size)
    {
        Requires.NetNamespaces();

        const int Count = 300;
        MethodInfo[] methods = [.. typeof(DevmemTxBenchmarks).GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null)];
        Assert.Equal(["SimNicDevmemSend", "SocketSendToLoopback", "SocketSendToTun", "TunNicDevmemSend"], methods.Select(m => m.Name).Order());
        var b = new DevmemTxBenchmarks { Size = size, Count = Count };
        b.Setup();
        try
        {
            foreach (MethodInfo m in methods)
            {
                Assert.Equal((long)Count * size, (long)m.Invoke(b, null)!);
            }

            // Warmed up: a second pass of each devmem path allocates nothing on the sending thread.
            foreach (Func<long> send in new Func<long>[] { b.SimNicDevmemSend, b.TunNicDevmemSend })
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                long bytes = send();
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                Assert.Equal((long)Count * size, bytes);
                Assert.Equal(0, allocated);
            }
        }
        finally
        {
            b.Cleanup();
        }
    }

    [Fact]
    public void Tx_benchmark_setup_fails_fast_with_the_reason_when_unsupported()
    {
        Requires.Unprivileged();

        var e = Assert.Throws<InvalidOperationException>(() => new DevmemTxBenchmarks { Size = 64 }.Setup());
        Assert.Contains("need root", e.Message, StringComparison.Ordinal);
    }
}
