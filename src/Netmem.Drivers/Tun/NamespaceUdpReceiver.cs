using System.Net;
using System.Net.Sockets;
using Netmem.Native;

namespace Netmem.Drivers.Tun;

/// <summary>
/// An ordinary kernel UDP socket bound inside a <see cref="NetNamespace"/>: the far end that
/// receives what a driver transmits into the namespace (a TUN's own address, a veth peer's).
/// Created on a thread that joined the namespace; usable from any thread afterwards.
/// </summary>
internal static class NamespaceUdpReceiver
{
    /// <summary>The receive buffer forced on the socket: room for far more datagrams than a sender keeps in flight.</summary>
    public const int ReceiveBufferBytes = 8 << 20;

    /// <summary>
    /// Creates a UDP socket in <paramref name="ns"/>, forces its receive buffer to
    /// <see cref="ReceiveBufferBytes"/> (<c>SO_RCVBUFFORCE</c>, root) and binds it to
    /// <paramref name="local"/>. <paramref name="receiveTimeoutMs"/> bounds a blocking receive (0: none).
    /// </summary>
    public static Socket Open(NetNamespace ns, IPEndPoint local, int receiveTimeoutMs = 0)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(local);
        return ns.Run(() =>
        {
            var s = new Socket(local.AddressFamily, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = receiveTimeoutMs };
            try
            {
                s.SetRawSocketOption(1, 33, BitConverter.GetBytes(ReceiveBufferBytes)); // SOL_SOCKET, SO_RCVBUFFORCE
                s.Bind(local);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        });
    }
}
