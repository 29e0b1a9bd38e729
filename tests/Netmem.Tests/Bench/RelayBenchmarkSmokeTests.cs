using System.Reflection;
using BenchmarkDotNet.Attributes;
using Netmem.Benchmarks;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>Runs every relay benchmark method twice, at both payload sizes, with a small datagram count.</summary>
public sealed class RelayBenchmarkSmokeTests
{
    public static TheoryData<int> Sizes => [64, 1400];

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Every_relay_benchmark_method_runs_and_the_far_end_gets_every_payload_byte(int size)
    {
        MethodInfo[] methods = [.. typeof(RelayBenchmarks).GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null)];
        Assert.Equal(["SocketCopyRelay", "ZeroCopyRelay"], methods.Select(m => m.Name).Order());
        var bench = new RelayBenchmarks { Size = size, Count = 200 };
        bench.Setup();
        try
        {
            foreach (MethodInfo m in methods)
            {
                Assert.Equal(200L * size, (long)m.Invoke(bench, null)!);
                Assert.Equal(200L * size, (long)m.Invoke(bench, null)!);
            }
        }
        finally
        {
            bench.Cleanup();
        }
    }
}
