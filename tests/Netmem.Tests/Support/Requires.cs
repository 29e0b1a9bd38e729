using Netmem.Native;
using Xunit;

namespace Netmem.Tests.Support;

/// <summary>
/// Preconditions of tests that need something of the machine (root, <c>/dev/net/tun</c>, network
/// namespaces). A test that cannot run reports itself as skipped, with the reason, never as passed.
/// </summary>
/// <remarks>
/// Where the environment promises the privileges (CI runs as root with <c>/dev/net/tun</c> and sets
/// <c>NETMEM_REQUIRE_PRIVILEGED=1</c>), a missing precondition fails the test instead: there a
/// skip would hide a broken setup.
/// </remarks>
internal static class Requires
{
    /// <summary>Whether the environment promises that privileged tests can run.</summary>
    public static bool PrivilegedPromised =>
        Environment.GetEnvironmentVariable("NETMEM_REQUIRE_PRIVILEGED") == "1";

    /// <summary>Skips (or, where privileges are promised, fails) unless namespaces and TUN work here.</summary>
    public static void NetNamespaces()
    {
        if (!NetNamespace.IsSupported)
        {
            Unmet("needs root, network namespaces and /dev/net/tun: " + NetNamespace.UnsupportedReason);
        }
    }

    /// <summary>Skips (or, where privileges are promised, fails) unless namespaces and AF_XDP sockets work here.</summary>
    public static void AfXdp()
    {
        NetNamespaces();
        if (XskSocket.UnsupportedReason is string why)
        {
            Unmet("needs AF_XDP: " + why);
        }
    }

    /// <summary>Skips unless the process runs without the namespace privileges (a failure path under test).</summary>
    public static void Unprivileged()
    {
        if (NetNamespace.IsSupported)
        {
            Assert.Skip("runs only unprivileged: this process can create namespaces and TUN devices");
        }
    }

    /// <summary>Requires io_uring when a UdpReceiver test runs on that path; recvmmsg needs nothing.</summary>
    public static void UdpPath(Netmem.Drivers.Udp.UdpReceivePath path)
    {
        if (path == Netmem.Drivers.Udp.UdpReceivePath.IoUring)
        {
            IoUring();
        }
    }

    /// <summary>Skips (or, where privileges are promised, fails) unless this kernel lets the process set up io_uring.</summary>
    public static void IoUring()
    {
        try
        {
            Netmem.Native.IoUring.Create(2, 4).Dispose();
        }
        catch (NativeException e)
        {
            Unmet("needs io_uring (kernel 6.0+, kernel.io_uring_disabled = 0, no seccomp filter): " + e.Message);
        }
    }

    /// <summary>Skips, or fails where privileges are promised, with the reason.</summary>
    public static void Unmet(string reason)
    {
        if (PrivilegedPromised)
        {
            Assert.Fail("NETMEM_REQUIRE_PRIVILEGED=1 but a privileged test cannot run: " + reason);
        }

        Assert.Skip(reason);
    }
}
