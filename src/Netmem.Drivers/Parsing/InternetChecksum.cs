using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Netmem.Drivers.Parsing;

/// <summary>
/// The internet checksum (RFC 1071) accumulated over pieces that need not break at an even byte:
/// a byte left over at the end of one piece pairs with the first byte of the next, so the
/// fragments of a datagram can be summed where they lie.
/// </summary>
internal struct InternetChecksum
{
    /// <summary>The one's-complement sum so far, folded only at the end (2^16 ≡ 1 mod 0xFFFF).</summary>
    private ulong _sum;

    /// <summary>The high byte of a 16-bit word whose low byte is the next piece's first byte, or -1.</summary>
    private int _pending;

    /// <summary>An empty sum.</summary>
    public InternetChecksum() => _pending = -1;

    /// <summary>Adds a 16-bit value (a length or a protocol number of a pseudo-header).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AddWord(ushort value) => _sum += value;

    /// <summary>Adds <paramref name="data"/> as the next bytes of the summed stream.</summary>
    public void Add(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return;
        }

        if (_pending >= 0)
        {
            _sum += (uint)((_pending << 8) | data[0]);
            _pending = -1;
            data = data[1..];
        }

        int i = 0;
        for (; i + 4 <= data.Length; i += 4)
        {
            _sum += BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
        }

        if (i + 2 <= data.Length)
        {
            _sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
            i += 2;
        }

        if (i < data.Length)
        {
            _pending = data[i];
        }
    }

    /// <summary>The checksum: the complement of the folded sum, an odd last byte padded with zero.</summary>
    public readonly ushort Finish()
    {
        ulong sum = _sum + (_pending >= 0 ? (uint)(_pending << 8) : 0u);
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }
}
