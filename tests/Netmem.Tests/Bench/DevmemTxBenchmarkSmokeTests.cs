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

            // Warmed up, each devmem path allocates nothing on the sending thread. Three measured
            // passes of Count sends: an allocation per send, or one every Count sends or fewer,
            // shows in every pass; an object the runtime makes lazily once on this thread (seen
            // once in a full parallel run: 56 B in a single pass, as the relay allocation test
            // saw) shows in one pass at most. So at least two passes must be exactly 0.
            foreach ((string name, Func<long> send) in new (string, Func<long>)[] { ("SimNicDevmemSend", b.SimNicDevmemSend), ("TunNicDevmemSend", b.TunNicDevmemSend) })
            {
                long[] allocated = new long[3];
                for (int pass = 0; pass < allocated.Length; pass++)
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    long bytes = send();
                    allocated[pass] = GC.GetAllocatedBytesForCurrentThread() - before;
                    Assert.Equal((long)Count * size, bytes);
                }

                Assert.True(allocated.Count(a => a == 0) >= 2, $"{name}: allocated {string.Join(", ", allocated)} bytes in three passes of {Count} sends");
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
