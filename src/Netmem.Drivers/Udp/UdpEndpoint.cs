using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Netmem.Native;

namespace Netmem.Drivers.Udp;

/// <summary>
/// A datagram's source address as a plain value (no <see cref="IPAddress"/> is made until
/// <see cref="ToIPEndPoint"/> is called): the family, the port in host order, and the address
/// bytes (IPv4 in the low 32 bits of <see cref="AddressLow"/>, IPv6 big-endian over both halves).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public readonly struct UdpEndpoint : IEquatable<UdpEndpoint>
{
    private readonly SockAddr _addr;

    internal UdpEndpoint(in SockAddr addr) => _addr = addr;

    /// <summary><see cref="AddressFamily.InterNetwork"/>, <see cref="AddressFamily.InterNetworkV6"/>, or <see cref="AddressFamily.Unknown"/> when the kernel gave none.</summary>
    public AddressFamily Family => _addr.Family switch
    {
        UdpSocketNative.AF_INET => AddressFamily.InterNetwork,
        UdpSocketNative.AF_INET6 => AddressFamily.InterNetworkV6,
        _ => AddressFamily.Unknown,
    };

    /// <summary>The source port.</summary>
    public int Port => _addr.Port;

    /// <summary>The first 8 bytes of an IPv6 address, big-endian; 0 for IPv4.</summary>
    public ulong AddressHigh => _addr.AddressHigh;

    /// <summary>The last 8 bytes of an IPv6 address, big-endian, or the IPv4 address in the low 32 bits.</summary>
    public ulong AddressLow => _addr.AddressLow;

    /// <summary>The IPv6 scope id (0 for IPv4).</summary>
    public uint ScopeId => _addr.ScopeId;

    /// <summary>Makes an <see cref="IPEndPoint"/> (allocates: for logs and tests, not per datagram).</summary>
    public IPEndPoint ToIPEndPoint() => Family == AddressFamily.Unknown ? new IPEndPoint(IPAddress.None, 0) : _addr.ToIPEndPoint();

    /// <inheritdoc/>
    public bool Equals(UdpEndpoint other) =>
        _addr.Family == other._addr.Family && _addr.Port == other._addr.Port && _addr.AddressHigh == other._addr.AddressHigh
        && _addr.AddressLow == other._addr.AddressLow && _addr.ScopeId == other._addr.ScopeId;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is UdpEndpoint e && Equals(e);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(_addr.AddressHigh, _addr.AddressLow, _addr.Port, _addr.Family);

    /// <summary>Equality of family, address, scope and port.</summary>
    public static bool operator ==(UdpEndpoint left, UdpEndpoint right) => left.Equals(right);

    /// <summary>Inequality of family, address, scope or port.</summary>
    public static bool operator !=(UdpEndpoint left, UdpEndpoint right) => !left.Equals(right);

    /// <summary>"127.0.0.1:5000" or "[::1]:5000".</summary>
    public override string ToString() => Family == AddressFamily.Unknown
        ? "(no address)"
        : ToIPEndPoint().ToString();
}
