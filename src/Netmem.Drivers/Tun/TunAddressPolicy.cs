using System.Net;
using System.Net.Sockets;

namespace Netmem.Drivers.Tun;

/// <summary>
/// The only addresses Netmem's TUN tooling configures or sends to: the IPv4 benchmarking range
/// 198.18.0.0/15 (RFC 2544) and IPv6 unique-local fd00::/8, used inside a namespace Netmem
/// created. Anything else is refused, so a mistake can never put test traffic on a real network.
/// </summary>
public static class TunAddressPolicy
{
    /// <summary>Whether <paramref name="address"/> is in 198.18.0.0/15 or fd00::/8.</summary>
    public static bool IsAllowed(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        Span<byte> b = stackalloc byte[16];
        if (!address.TryWriteBytes(b, out int n))
        {
            return false;
        }

        return address.AddressFamily switch
        {
            AddressFamily.InterNetwork => n == 4 && b[0] == 198 && (b[1] & 0xFE) == 18,
            AddressFamily.InterNetworkV6 => n == 16 && b[0] == 0xFD && !address.IsIPv4MappedToIPv6,
            _ => false,
        };
    }

    /// <summary>Throws unless <see cref="IsAllowed"/>; a prefix must keep the whole subnet inside the range.</summary>
    internal static void EnsureAllowed(IPAddress address, int prefixLength, string paramName)
    {
        ArgumentNullException.ThrowIfNull(address);
        int minPrefix = address.AddressFamily == AddressFamily.InterNetwork ? 15 : 8;
        int maxPrefix = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (!IsAllowed(address))
        {
            throw new ArgumentException($"{address} is outside 198.18.0.0/15 and fd00::/8, the only ranges Netmem's TUN tooling uses.", paramName);
        }

        if (prefixLength < minPrefix || prefixLength > maxPrefix)
        {
            throw new ArgumentOutOfRangeException(paramName, prefixLength, $"Prefix /{prefixLength} for {address} must be within /{minPrefix}../{maxPrefix} so the routed subnet stays inside the allowed range.");
        }
    }
}
