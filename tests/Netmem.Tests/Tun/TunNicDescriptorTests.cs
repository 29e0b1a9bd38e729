using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>Creating and disposing a TunNic releases every descriptor it opened at once, not at the next GC.</summary>
[Collection(DescriptorCountCollection.Name)]
public sealed class TunNicDescriptorTests(ITestOutputHelper output)
{
    [Fact]
    public void Create_and_dispose_cycles_leave_the_open_descriptor_count_unchanged_without_a_gc()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        new TunNic(ns).Dispose(); // warm-up: lazily opened runtime descriptors (epoll, event pipes) are not the driver's
        int before = OpenDescriptors();
        int gcBefore = GC.CollectionCount(0);
        for (int i = 0; i < 5; i++)
        {
            new TunNic(ns).Dispose();
        }

        int after = OpenDescriptors();
        output.WriteLine($"descriptors {before} -> {after}, gen0 collections during the cycles {GC.CollectionCount(0) - gcBefore}");
        Assert.Equal(before, after);
    }

    private static int OpenDescriptors() => Directory.GetFileSystemEntries("/proc/self/fd").Length;
}
