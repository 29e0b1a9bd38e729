using System.Reflection;
using BenchmarkDotNet.Attributes;
using Netmem.Benchmarks;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>Runs every SimNic benchmark method once, at every payload size, with a small frame count.</summary>
public sealed class SimNicBenchmarkSmokeTests
{
    public static TheoryData<int> PayloadSizes => [64, 1500, 9000];

    [Theory]
    [MemberData(nameof(PayloadSizes))]
    public void Every_benchmark_method_runs_once_and_consumes_every_frame(int payloadSize)
    {
        MethodInfo[] methods = [.. typeof(SimNicBenchmarks).GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null)];
        Assert.Equal(["ArrayPoolPipeline", "Devmem", "Readable"], methods.Select(m => m.Name).Order());
        var bench = new SimNicBenchmarks { PayloadSize = payloadSize, FrameCount = 64 };
        bench.Setup();
        try
        {
            foreach (MethodInfo m in methods)
            {
                // Every payload starts with byte 1 (FillPayload writes seq 1 little-endian), so the checksum is the frame count.
                Assert.Equal(64L, (long)m.Invoke(bench, null)!);
                Assert.Equal(64L, (long)m.Invoke(bench, null)!);
            }
        }
        finally
        {
            bench.Cleanup();
        }
    }
}
