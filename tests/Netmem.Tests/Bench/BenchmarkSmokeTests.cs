using System.Reflection;
using BenchmarkDotNet.Attributes;
using Netmem.Benchmarks;
using Xunit;

namespace Netmem.Tests.Bench;

/// <summary>
/// Runs every [Benchmark] of the page pool suites once, directly, without BenchmarkDotNet: the
/// setup and cleanup hooks, then each method, so CI proves each benchmark runs and gives back
/// every page it took.
/// </summary>
public sealed class BenchmarkSmokeTests
{
    private static readonly string[] Suites =
    [
        nameof(PagePoolBenchmarks),
        nameof(PagePoolCrossThreadBenchmarks),
        nameof(PagePoolSharedBenchmarks),
    ];

    public static IEnumerable<object[]> PagePoolSuites() => Suites.Select(s => new object[] { s });

    [Fact]
    public void Page_pool_suites_hold_the_expected_benchmarks_with_one_baseline_each()
    {
        string[] expected =
        [
            "PagePoolBenchmarks.ArrayPool_RentReturn",
            "PagePoolBenchmarks.ConcurrentQueuePool_DequeueEnqueue",
            "PagePoolBenchmarks.PagePool_FastPath_AllocRecycleDirect",
            "PagePoolBenchmarks.PagePool_PtrRingPath_AllocPutViaRing",
            "PagePoolBenchmarks.PagePool_SlowPath_ReleaseToArena",
            "PagePoolBenchmarks.PageArena_AllocFree",
            "PagePoolCrossThreadBenchmarks.PagePool_CrossThread",
            "PagePoolCrossThreadBenchmarks.ConcurrentQueuePool_CrossThread",
            "PagePoolCrossThreadBenchmarks.PagePool_CrossThread_PutBulk",
            "PagePoolCrossThreadBenchmarks.ConcurrentQueuePool_CrossThread_Burst",
            "PagePoolSharedBenchmarks.ArrayPool_TwoThreads",
            "PagePoolSharedBenchmarks.PagePool_Shared_TwoThreads",
        ];
        string[] found = Suites
            .SelectMany(n => BenchmarkMethods(SuiteType(n)).Select(m => $"{n}.{m.Name}"))
            .ToArray();
        Assert.Equal(expected.Order(), found.Order());

        foreach (string suite in Suites)
        {
            Type t = SuiteType(suite);
            Assert.Single(BenchmarkMethods(t), m => m.GetCustomAttribute<BenchmarkAttribute>()!.Baseline);
            Assert.All(BenchmarkMethods(t), m => Assert.True(m.GetCustomAttribute<BenchmarkAttribute>()!.OperationsPerInvoke > 1, m.Name));
            Assert.NotNull(t.GetCustomAttribute<MemoryDiagnoserAttribute>());
        }
    }

    [Theory]
    [MemberData(nameof(PagePoolSuites))]
    public void Every_benchmark_of_the_suite_runs_once_and_returns_every_page(string suite)
    {
        Type type = SuiteType(suite);
        object instance = Activator.CreateInstance(type)!;
        List<string> ran = [];

        Invoke<GlobalSetupAttribute>(type, instance);
        try
        {
            foreach (MethodInfo m in BenchmarkMethods(type))
            {
                Invoke<IterationSetupAttribute>(type, instance);
                m.Invoke(instance, null);
                Invoke<IterationCleanupAttribute>(type, instance);
                ran.Add(m.Name);
            }
        }
        finally
        {
            Invoke<GlobalCleanupAttribute>(type, instance);
        }

        Assert.Equal(BenchmarkMethods(type).Select(m => m.Name), ran);
        int pagesOut = (int)type.GetProperty("ArenaPagesOutAfterCleanup", BindingFlags.Instance | BindingFlags.NonPublic)!.GetValue(instance)!;
        Assert.Equal(0, pagesOut);
    }

    private static Type SuiteType(string name) => typeof(PagePoolBenchmarks).Assembly.GetType("Netmem.Benchmarks." + name, throwOnError: true)!;

    private static MethodInfo[] BenchmarkMethods(Type t) =>
        t.GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Where(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null)
            .OrderBy(m => m.MetadataToken)
            .ToArray();

    private static void Invoke<TAttribute>(Type t, object instance)
        where TAttribute : Attribute
    {
        foreach (MethodInfo m in t.GetMethods(BindingFlags.Public | BindingFlags.Instance).Where(m => m.GetCustomAttribute<TAttribute>() is not null))
        {
            m.Invoke(instance, null);
        }
    }
}
