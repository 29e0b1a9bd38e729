using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;

namespace Netmem.Net;

/// <summary>
/// Where a <see cref="DevmemSocket"/> sends: the output device and the UDP source and
/// destination (the kernel's socket route, <c>sk_dst_cache</c>, and its connected addresses).
/// Set by <see cref="DevmemSocket.Connect"/>.
/// </summary>
public sealed class DevmemTxRoute
{
    internal DevmemTxRoute(NetDevice device, IPEndPoint source, IPEndPoint destination)
    {
        Device = device;
        Source = source;
        Destination = destination;
        IsIPv6 = source.AddressFamily == AddressFamily.InterNetworkV6;
        SourceAddress = ToUInt128(source.Address);
        DestinationAddress = ToUInt128(destination.Address);
        SourcePort = (ushort)source.Port;
        DestinationPort = (ushort)destination.Port;
    }

    /// <summary>The device every send goes out of.</summary>
    public NetDevice Device { get; }

    /// <summary>The datagrams' source address and port.</summary>
    public IPEndPoint Source { get; }

    /// <summary>The datagrams' destination address and port.</summary>
    public IPEndPoint Destination { get; }

    /// <summary>True for IPv6 addresses, false for IPv4.</summary>
    public bool IsIPv6 { get; }

    /// <summary>The source address as a number: IPv4 in the low 32 bits, as in <see cref="FlowKey"/>.</summary>
    public UInt128 SourceAddress { get; }

    /// <summary>The destination address as a number: IPv4 in the low 32 bits, as in <see cref="FlowKey"/>.</summary>
    public UInt128 DestinationAddress { get; }

    /// <summary>The UDP source port.</summary>
    public ushort SourcePort { get; }

    /// <summary>The UDP destination port.</summary>
    public ushort DestinationPort { get; }

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"udp {Source} -> {Destination} via {Device.Name}");

    /// <summary>Checks the endpoints a socket may connect to and makes the route.</summary>
    internal static DevmemTxRoute Create(NetDevice device, IPEndPoint source, IPEndPoint destination)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(destination);
        if (source.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw new ArgumentException($"source {source} is not an IPv4 or IPv6 endpoint", nameof(source));
        }

        if (destination.AddressFamily != source.AddressFamily)
        {
            throw new ArgumentException($"destination {destination} is not of the source's address family ({source.AddressFamily})", nameof(destination));
        }

        if (destination.Port == 0)
        {
            throw new ArgumentException("the destination port must not be 0", nameof(destination));
        }

        return new DevmemTxRoute(device, source, destination);
    }

    private static UInt128 ToUInt128(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out int n);
        UInt128 v = 0;
        for (int i = 0; i < n; i++)
        {
            v = (v << 8) | b[i];
        }

        return v;
    }
}
