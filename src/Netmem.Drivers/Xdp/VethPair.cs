using System.Net;
using Netmem.Drivers.Tun;
using Netmem.Native;

namespace Netmem.Drivers.Xdp;

/// <summary>
/// Two private network namespaces joined by a veth pair: the device end (<see cref="Name"/>, in
/// <see cref="DeviceNamespace"/>) for an <see cref="XdpNic"/>, the peer end in
/// <see cref="PeerNamespace"/> where a <see cref="NamespaceUdpSender"/> sends through the kernel.
/// Made with rtnetlink; disposing deletes both namespaces and with them the pair.
/// </summary>
/// <remarks>
/// Addresses come from the benchmarking range and a unique-local prefix
/// (<see cref="TunAddressPolicy"/>), so traffic never leaves the two namespaces. The peer holds
/// permanent neighbour entries for the device end's addresses: it sends without ARP or neighbour
/// discovery, whose requests would otherwise reach the device end's XDP program and never be
/// answered. Neither end generates an IPv6 link-local address, so neither sends router
/// solicitations of its own.
/// </remarks>
public sealed class VethPair : IDisposable
{
    /// <summary>The device end's IPv4 address.</summary>
    public static readonly IPAddress DeviceIPv4 = IPAddress.Parse("198.18.7.1");

    /// <summary>The peer end's IPv4 address.</summary>
    public static readonly IPAddress PeerIPv4 = IPAddress.Parse("198.18.7.2");

    /// <summary>The device end's IPv6 address.</summary>
    public static readonly IPAddress DeviceIPv6 = IPAddress.Parse("fd00:6e6d:7::1");

    /// <summary>The peer end's IPv6 address.</summary>
    public static readonly IPAddress PeerIPv6 = IPAddress.Parse("fd00:6e6d:7::2");

    private VethPair(NetNamespace device, NetNamespace peer, string name, string peerName, byte[] peerMac)
    {
        DeviceNamespace = device;
        PeerNamespace = peer;
        Name = name;
        PeerName = peerName;
        _peerMac = peerMac;
    }

    private readonly byte[] _peerMac;

    /// <summary>The peer end's MAC address (read with rtnetlink at creation): the next hop of frames the device end sends.</summary>
    public ReadOnlySpan<byte> PeerMacAddress => _peerMac;

    /// <summary>The namespace of the device end.</summary>
    public NetNamespace DeviceNamespace { get; }

    /// <summary>The namespace of the peer end.</summary>
    public NetNamespace PeerNamespace { get; }

    /// <summary>The device end's interface name.</summary>
    public string Name { get; }

    /// <summary>The peer end's interface name.</summary>
    public string PeerName { get; }

    /// <summary>Creates the namespaces and the pair, addresses both ends and brings them up.</summary>
    /// <exception cref="NativeException">Not root, or the kernel refused a step (the message says which).</exception>
    public static VethPair Create(string prefix = "netmem-xdp", string name = "nmxdp0", string peerName = "nmxdp0p", int mtu = 1500)
    {
        NetNamespace device = NetNamespace.Create(prefix);
        NetNamespace? peer = null;
        try
        {
            peer = NetNamespace.Create(prefix + "-peer");
            int peerFd = peer.Fd;
            using (RtNetlink rtnl = device.OpenRtNetlink())
            {
                rtnl.CreateVethPair(name, peerName, peerNamespaceFd: peerFd);
                rtnl.SetLink(name, mtu: mtu, ipv6LinkLocal: false);
                rtnl.AddAddress(name, DeviceIPv4, 24);
                rtnl.AddAddress(name, DeviceIPv6, 64);
                rtnl.SetLink(name, up: true);
                rtnl.SetLink("lo", up: true);
            }

            ReadOnlyMemory<byte> mac = device.Run(() =>
            {
                using RtNetlink r = RtNetlink.Open();
                return r.GetLink(name).MacAddress;
            });
            using (RtNetlink rtnl = peer.OpenRtNetlink())
            {
                rtnl.SetLink(peerName, mtu: mtu, ipv6LinkLocal: false);
                rtnl.AddAddress(peerName, PeerIPv4, 24);
                rtnl.AddAddress(peerName, PeerIPv6, 64);
                rtnl.SetLink(peerName, up: true);
                rtnl.AddNeighbour(peerName, DeviceIPv4, mac.Span);
                rtnl.AddNeighbour(peerName, DeviceIPv6, mac.Span);
            }

            byte[] peerMac = peer.Run(() =>
            {
                using RtNetlink r = RtNetlink.Open();
                return r.GetLink(peerName).MacAddress.ToArray();
            });
            return new VethPair(device, peer, name, peerName, peerMac);
        }
        catch
        {
            peer?.Dispose();
            device.Dispose();
            throw;
        }
    }

    /// <summary>The device end's kernel counters.</summary>
    public LinkStats64 ReadDeviceCounters() => Read(DeviceNamespace, Name);

    /// <summary>The peer end's kernel counters (its tx is what reached the device end).</summary>
    public LinkStats64 ReadPeerCounters() => Read(PeerNamespace, PeerName);

    /// <summary>A sender in the peer namespace to <paramref name="port"/> of the device end (IPv6 when asked).</summary>
    public NamespaceUdpSender OpenSender(ushort port, bool ipv6 = false, int maxDatagrams = NamespaceUdpSender.DefaultMaxDatagrams) =>
        new(PeerNamespace, new IPEndPoint(ipv6 ? DeviceIPv6 : DeviceIPv4, port), maxDatagrams);

    /// <summary>Deletes both namespaces; the kernel removes the pair with them.</summary>
    public void Dispose()
    {
        PeerNamespace.Dispose();
        DeviceNamespace.Dispose();
    }

    private static LinkStats64 Read(NetNamespace ns, string name) => ns.Run(() =>
    {
        using RtNetlink rtnl = RtNetlink.Open();
        return rtnl.GetLink(name).Stats;
    });
}
