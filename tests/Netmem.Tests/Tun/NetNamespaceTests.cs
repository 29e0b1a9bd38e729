using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

public sealed class NetNamespaceTests(ITestOutputHelper output)
{

    [Fact]
    public void IsSupported_comes_with_a_reason_exactly_when_it_is_false()
    {
        output.WriteLine($"IsSupported={NetNamespace.IsSupported} reason={NetNamespace.UnsupportedReason ?? "(none)"}");
        Assert.Equal(NetNamespace.IsSupported, NetNamespace.UnsupportedReason is null);
    }

    [Fact]
    public void Create_makes_a_uniquely_named_namespace_and_Dispose_deletes_it()
    {
        Requires.NetNamespaces();

        string name;
        using (var a = NetNamespace.Create())
        using (var b = NetNamespace.Create())
        {
            name = a.Name;
            Assert.NotEqual(a.Name, b.Name);
            Assert.StartsWith($"netmem-{Environment.ProcessId}-", a.Name, StringComparison.Ordinal);
            Assert.True(a.Exists);
            Assert.Contains(a.Name, IpNetnsList(), StringComparison.Ordinal);
        }

        Assert.DoesNotContain(name, IpNetnsList(), StringComparison.Ordinal);
        Assert.False(File.Exists("/run/netns/" + name));
    }

    [Fact]
    public void Dispose_deletes_the_namespace_even_while_a_tun_inside_is_still_open()
    {
        Requires.NetNamespaces();

        var ns = NetNamespace.Create();
        using var tun = TunDevice.Create(ns);
        ns.Dispose();
        Assert.DoesNotContain(ns.Name, IpNetnsList(), StringComparison.Ordinal);
        Assert.Throws<ObjectDisposedException>(() => ns.Fd);
        ns.Dispose(); // idempotent
    }

    [Fact]
    public void Run_executes_on_a_dedicated_thread_inside_the_namespace_and_leaves_the_caller_outside()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var tun = TunDevice.Create(ns, "nmrun0");
        string outside = NamespaceLink();
        int callerThread = Environment.CurrentManagedThreadId;

        (string inside, int thread, int ifIndex) = ns.Run(() => (NamespaceLink(), Environment.CurrentManagedThreadId, Sys.IfNameToIndex("nmrun0")));

        Assert.NotEqual(outside, inside);
        Assert.NotEqual(callerThread, thread);
        Assert.Equal(tun.IfIndex, ifIndex);
        Assert.True(ifIndex > 0);
        Assert.Equal(0, Sys.IfNameToIndex("nmrun0"));
        Assert.Equal(outside, NamespaceLink());
        Assert.Equal(inside, ns.Run(NamespaceLink));
    }

    [Fact]
    public void Run_rethrows_the_delegates_exception_on_the_caller()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        var e = Assert.Throws<InvalidOperationException>(() => ns.Run(() => throw new InvalidOperationException("inside")));
        Assert.Equal("inside", e.Message);
    }

    [Fact]
    public void Counters_from_proc_and_from_rtnetlink_agree_on_a_fresh_device()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var tun = TunDevice.Create(ns);
        Assert.Equal(default, tun.ReadCounters());
        Assert.Equal(tun.ReadCounters(), tun.ReadCountersFromNetlink());
    }

    private static string NamespaceLink() => File.ResolveLinkTarget("/proc/thread-self/ns/net", returnFinalTarget: false)?.Name
        ?? new FileInfo("/proc/thread-self/ns/net").LinkTarget ?? "?";

    /// <summary>The names <c>ip netns list</c> would show: the entries of /run/netns.</summary>
    private static string IpNetnsList() =>
        string.Join('\n', Directory.Exists(NetNamespace.NetnsDirectory) ? Directory.GetFiles(NetNamespace.NetnsDirectory).Select(Path.GetFileName) : []);
}
