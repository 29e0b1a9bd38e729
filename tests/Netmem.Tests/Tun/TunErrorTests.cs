using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>The errors a driver author meets when TUN or namespace setup goes wrong.</summary>
public sealed class TunErrorTests(ITestOutputHelper output)
{

    [Fact]
    public void A_multi_queue_tun_over_a_single_queue_tun_of_the_same_name_says_the_name_is_in_use()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var first = TunDevice.Create(ns, "nmbusy0");
        var e = Assert.Throws<NativeException>(() => TunDevice.Create(ns, "nmbusy0", queueCount: 2));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.EINVAL, e.ErrorNumber);
        Assert.Contains("name 'nmbusy0' is in use", e.Message, StringComparison.Ordinal);
        Assert.StartsWith("ioctl(TUNSETIFF", e.Call, StringComparison.Ordinal);
    }

    [Fact]
    public void A_second_queue_on_a_single_queue_tun_says_the_name_is_in_use()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var first = TunDevice.Create(ns, "nmbusy1");
        var e = Assert.Throws<NativeException>(() => TunDevice.Create(ns, "nmbusy1"));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.EBUSY, e.ErrorNumber);
        Assert.Contains("name 'nmbusy1' is in use", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tun_named_like_an_existing_veth_says_the_name_is_in_use()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using RtNetlink rtnl = ns.OpenRtNetlink();
        rtnl.CreateVethPair("nmtap0", "nmtap0p");
        var e = Assert.Throws<NativeException>(() => TunDevice.Create(ns, "nmtap0"));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.EINVAL, e.ErrorNumber);
        Assert.Contains("name 'nmtap0' is in use", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_tun_named_lo_says_the_name_is_in_use()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        var e = Assert.Throws<NativeException>(() => TunDevice.Create(ns, "lo"));
        Assert.Contains("name 'lo' is in use", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_same_name_in_two_namespaces_does_not_collide()
    {
        Requires.NetNamespaces();

        using var a = NetNamespace.Create();
        using var b = NetNamespace.Create();
        using var ta = TunDevice.Create(a, "nmsame0");
        using var tb = TunDevice.Create(b, "nmsame0");
        Assert.Equal(ta.Name, tb.Name);
    }

    [Fact]
    public void A_tun_without_cap_net_admin_says_root_or_cap_net_admin_is_needed()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        var e = Assert.Throws<NativeException>(() => ns.Run(() =>
        {
            // Capabilities are per thread: only this dedicated namespace thread loses CAP_NET_ADMIN.
            ThreadCapabilities.DropEffective(ThreadCapabilities.NetAdmin);
            return TunFile.Open("nmperm0", multiQueue: false, nonBlocking: true, out _);
        }));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.EPERM, e.ErrorNumber);
        Assert.Contains("needs root or CAP_NET_ADMIN", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Opening_an_unknown_namespace_names_it_and_says_it_does_not_exist()
    {
        var e = Assert.Throws<NativeException>(() => NetNamespace.Open("netmem-no-such-namespace"));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.ENOENT, e.ErrorNumber);
        Assert.Contains("no network namespace named 'netmem-no-such-namespace'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("../etc")]
    [InlineData("a/b")]
    [InlineData("with space")]
    [InlineData("")]
    public void A_namespace_name_that_is_not_a_plain_name_is_refused(string name)
    {
        Assert.ThrowsAny<ArgumentException>(() => NetNamespace.Open(name));
    }

    [Fact]
    public void A_failing_rtnetlink_request_reports_the_request_errno_and_interface()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using RtNetlink rtnl = ns.OpenRtNetlink();
        var e = Assert.Throws<NativeException>(() => rtnl.GetLink("nmnosuch0"));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.ENODEV, e.ErrorNumber);
        Assert.Equal("rtnetlink(get link nmnosuch0)", e.Call);
        Assert.Contains("no interface named 'nmnosuch0'", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("a-name-too-long-for-linux")]
    [InlineData("bad/name")]
    public void An_invalid_interface_name_is_refused_before_the_kernel_sees_it(string name)
    {
        Assert.Throws<ArgumentException>(() => TunFile.Open(name, false, true, out _));
    }

    [Fact]
    public void Configuration_outside_the_test_ranges_is_refused()
    {
        Assert.False(TunAddressPolicy.IsAllowed(System.Net.IPAddress.Parse("10.0.0.1")));
        Assert.False(TunAddressPolicy.IsAllowed(System.Net.IPAddress.Parse("198.20.0.1")));
        Assert.False(TunAddressPolicy.IsAllowed(System.Net.IPAddress.Parse("2001:db8::1")));
        Assert.True(TunAddressPolicy.IsAllowed(System.Net.IPAddress.Parse("198.19.255.1")));
        Assert.True(TunAddressPolicy.IsAllowed(System.Net.IPAddress.Parse("fd12::1")));
        Assert.Throws<ArgumentException>(() => TunAddressPolicy.EnsureAllowed(System.Net.IPAddress.Parse("192.168.1.1"), 24, "a"));
        Assert.Throws<ArgumentOutOfRangeException>(() => TunAddressPolicy.EnsureAllowed(System.Net.IPAddress.Parse("198.18.0.1"), 8, "a"));
    }
}
