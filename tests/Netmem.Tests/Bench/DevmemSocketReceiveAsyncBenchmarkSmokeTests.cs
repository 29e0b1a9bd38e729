using System.Reflection;
using BenchmarkDotNet.Attributes;
using Netmem.Benchmarks;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>Runs every <see cref="DevmemSocketReceiveAsyncBenchmarks"/> method once, directly, without BenchmarkDotNet.</summary>
public sealed class DevmemSocketReceiveAsyncBenchmarkSmokeTests
{
    [Fact]
    public void Every_benchmark_method_runs_once_and_receives_one_record_per_operation()
    {
        MethodInfo[] methods = [.. typeof(DevmemSocketReceiveAsyncBenchmarks).GetMethods().Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null)];
        Assert.Equal(
            ["Channel_ReadAsync_Waiting", "ReceiveAsync_Ready", "ReceiveAsync_Waiting", "ReceiveAsync_Waiting_Cancellable", "Receive_Sync"],
            methods.Select(m => m.Name).Order(StringComparer.Ordinal));
        Assert.Single(methods, m => m.GetCustomAttribute<BenchmarkAttribute>()!.Baseline);
        Assert.NotNull(typeof(DevmemSocketReceiveAsyncBenchmarks).GetCustomAttribute<MemoryDiagnoserAttribute>());

        var bench = new DevmemSocketReceiveAsyncBenchmarks();
        bench.Setup();
        try
        {
            foreach (MethodInfo m in methods)
            {
                int operations = m.GetCustomAttribute<BenchmarkAttribute>()!.OperationsPerInvoke;
                Assert.Equal(operations, (int)m.Invoke(bench, null)!);
            }
        }
        finally
        {
            bench.Cleanup();
        }
    }
}
