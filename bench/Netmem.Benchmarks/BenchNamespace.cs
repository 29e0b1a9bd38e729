using System.Net;
using System.Net.Sockets;
using Netmem.Native;

namespace Netmem.Benchmarks;

/// <summary>The namespace pieces the kernel-path benchmarks share: a private namespace, and UDP sockets bound inside one.</summary>
internal static class BenchNamespace
{
    /// <summary>
    /// A private network namespace named after <paramref name="prefix"/> with its loopback up.
    /// Throws, naming <paramref name="benchmark"/> and the reason, where namespaces cannot be made (not root).
    /// </summary>
    public static NetNamespace CreateWithLoopback(string prefix, string benchmark)
    {
        if (!NetNamespace.IsSupported)
        {
            throw new InvalidOperationException($"{benchmark} need root (a private network namespace and a TUN device): " + NetNamespace.UnsupportedReason);
        }

        NetNamespace ns = NetNamespace.Create(prefix);
        try
        {
            using RtNetlink rtnl = ns.OpenRtNetlink();
            rtnl.SetLink("lo", up: true);
            return ns;
        }
        catch
        {
            ns.Dispose();
            throw;
        }
    }

    /// <summary>Throws, naming <paramref name="benchmark"/> and the reason, where AF_XDP benchmarks cannot run (not root, no namespaces, no AF_XDP).</summary>
    public static void RequireAfXdp(string benchmark)
    {
        if (!NetNamespace.IsSupported || XskSocket.UnsupportedReason is not null)
        {
            throw new InvalidOperationException($"{benchmark} need root, namespaces and AF_XDP: " + (NetNamespace.UnsupportedReason ?? XskSocket.UnsupportedReason));
        }
    }

    /// <summary>
    /// A UDP socket created inside <paramref name="ns"/> and bound at <paramref name="at"/>, with a
    /// 5 s receive timeout (a lost datagram fails the run instead of hanging it);
    /// <paramref name="configure"/> runs before the bind (e.g. to size the receive buffer).
    /// </summary>
    public static Socket BoundUdpSocket(NetNamespace ns, IPEndPoint at, Action<Socket>? configure = null) => ns.Run(() =>
    {
        var s = new Socket(at.AddressFamily, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 5000 };
        try
        {
            configure?.Invoke(s);
            s.Bind(at);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    });
}
