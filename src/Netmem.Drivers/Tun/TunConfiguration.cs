using System.Net;

namespace Netmem.Drivers.Tun;

/// <summary>
/// Link settings and addresses <see cref="TunDevice.Configure"/> applies inside the device's
/// namespace. With the defaults, the device holds 198.18.0.1/24 and fd00:6e6d::1/64, so the kernel
/// routes every other address of those subnets (e.g. <see cref="TunDevice.PeerIPv4"/>,
/// <see cref="TunDevice.PeerIPv6"/>) into the TUN, where a read picks the packets up.
/// </summary>
public sealed record TunConfiguration
{
    /// <summary>The link MTU (IPv6 needs at least 1280).</summary>
    public int Mtu { get; init; } = 1500;

    /// <summary>
    /// txqueuelen, which for a TUN is also the size of each queue's packet ring: packets the
    /// kernel transmits while a queue holds this many unread are dropped (tx_dropped). The
    /// kernel default is 500; null keeps it.
    /// </summary>
    public int? TxQueueLength { get; init; } = 1000;

    /// <summary>The device's IPv4 address, in 198.18.0.0/15; null for none.</summary>
    public IPAddress? IPv4Address { get; init; } = TunDevice.LocalIPv4;

    /// <summary>Prefix length of <see cref="IPv4Address"/> in bits (the subnet routed into the TUN); 24 by default.</summary>
    public int IPv4PrefixLength { get; init; } = 24;

    /// <summary>The device's IPv6 address, in fd00::/8, added with <c>nodad</c>; null for none.</summary>
    public IPAddress? IPv6Address { get; init; } = TunDevice.LocalIPv6;

    /// <summary>Prefix length of <see cref="IPv6Address"/> in bits; 64 by default.</summary>
    public int IPv6PrefixLength { get; init; } = 64;

    /// <summary>
    /// Whether the kernel gives the link an IPv6 link-local address (the default). When it does,
    /// it also sends router solicitations from it into the TUN after the link comes up. False sets
    /// <c>addrgenmode none</c>: no link-local address and no solicitations, a quieter device.
    /// </summary>
    public bool IPv6LinkLocal { get; init; } = true;

    internal void Validate()
    {
        if (Mtu < 68 || Mtu > 65535 || (IPv6Address is not null && Mtu < 1280))
        {
            throw new ArgumentOutOfRangeException(nameof(Mtu), Mtu, "MTU must be 68..65535, and at least 1280 with IPv6.");
        }

        if (TxQueueLength is < 1 or > 1_000_000)
        {
            throw new ArgumentOutOfRangeException(nameof(TxQueueLength), TxQueueLength, "txqueuelen must be 1..1000000.");
        }

        if (IPv4Address is not null)
        {
            if (IPv4Address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            {
                throw new ArgumentException("IPv4Address must be an IPv4 address.", nameof(IPv4Address));
            }

            TunAddressPolicy.EnsureAllowed(IPv4Address, IPv4PrefixLength, nameof(IPv4Address));
        }

        if (IPv6Address is not null)
        {
            if (IPv6Address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6)
            {
                throw new ArgumentException("IPv6Address must be an IPv6 address.", nameof(IPv6Address));
            }

            TunAddressPolicy.EnsureAllowed(IPv6Address, IPv6PrefixLength, nameof(IPv6Address));
        }
    }
}
