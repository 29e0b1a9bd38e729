using System.Buffers.Binary;
using System.Net;

namespace Netmem.Tests.Tun;

/// <summary>Hand-built packets for parser tests. Checksums are left zero: the parser does not check them.</summary>
internal static class PacketBuilder
{
    internal static readonly IPAddress V4Src = IPAddress.Parse("198.18.0.1");
    internal static readonly IPAddress V4Dst = IPAddress.Parse("198.18.0.2");
    internal static readonly IPAddress V6Src = IPAddress.Parse("fd00:6e6d::1");
    internal static readonly IPAddress V6Dst = IPAddress.Parse("fd00:6e6d::2");

    internal static byte[] Udp(ushort src, ushort dst, ReadOnlySpan<byte> payload, int? lengthField = null)
    {
        byte[] b = new byte[8 + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(0), src);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), dst);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), (ushort)(lengthField ?? b.Length));
        payload.CopyTo(b.AsSpan(8));
        return b;
    }

    internal static byte[] Tcp(ushort src, ushort dst, ReadOnlySpan<byte> payload, int optionBytes = 0, int? dataOffsetWords = null, byte flags = 0x18)
    {
        int header = 20 + optionBytes;
        byte[] b = new byte[header + payload.Length];
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(0), src);
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), dst);
        b[12] = (byte)((dataOffsetWords ?? header / 4) << 4);
        b[13] = flags;
        for (int i = 20; i < header; i++)
        {
            b[i] = 1; // NOP options
        }

        payload.CopyTo(b.AsSpan(header));
        return b;
    }

    internal static byte[] IPv4(byte protocol, ReadOnlySpan<byte> l4, int optionBytes = 0, ushort fragment = 0x4000, int? totalLengthField = null, int? ihlWords = null)
    {
        int header = 20 + optionBytes;
        byte[] b = new byte[header + l4.Length];
        b[0] = (byte)(0x40 | (ihlWords ?? header / 4));
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(2), (ushort)(totalLengthField ?? b.Length));
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(6), fragment);
        b[8] = 64;
        b[9] = protocol;
        V4Src.TryWriteBytes(b.AsSpan(12), out _);
        V4Dst.TryWriteBytes(b.AsSpan(16), out _);
        for (int i = 20; i < header; i++)
        {
            b[i] = 1; // NOP options
        }

        l4.CopyTo(b.AsSpan(header));
        return b;
    }

    /// <summary>An IPv6 packet; <paramref name="extensions"/> are (type, total length in bytes, multiple of 8) in order.</summary>
    internal static byte[] IPv6(byte protocol, ReadOnlySpan<byte> l4, (byte Type, int Length)[]? extensions = null, int? payloadLengthField = null)
    {
        extensions ??= [];
        int extBytes = extensions.Sum(e => e.Length);
        byte[] b = new byte[40 + extBytes + l4.Length];
        b[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(4), (ushort)(payloadLengthField ?? b.Length - 40));
        b[6] = extensions.Length > 0 ? extensions[0].Type : protocol;
        b[7] = 64;
        V6Src.TryWriteBytes(b.AsSpan(8), out _);
        V6Dst.TryWriteBytes(b.AsSpan(24), out _);
        int o = 40;
        for (int i = 0; i < extensions.Length; i++)
        {
            b[o] = i + 1 < extensions.Length ? extensions[i + 1].Type : protocol;
            b[o + 1] = extensions[i].Type == 44 ? (byte)0 : (byte)(extensions[i].Length / 8 - 1);
            o += extensions[i].Length;
        }

        l4.CopyTo(b.AsSpan(o));
        return b;
    }

    internal static byte[] Ethernet(ushort etherType, ReadOnlySpan<byte> l3, ushort? vlanTci = null, int padTo = 0)
    {
        int header = vlanTci is null ? 14 : 18;
        byte[] b = new byte[Math.Max(header + l3.Length, padTo)];
        for (int i = 0; i < 12; i++)
        {
            b[i] = (byte)(0x10 + i);
        }

        if (vlanTci is ushort tci)
        {
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(12), 0x8100);
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(14), tci);
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(16), etherType);
        }
        else
        {
            BinaryPrimitives.WriteUInt16BigEndian(b.AsSpan(12), etherType);
        }

        l3.CopyTo(b.AsSpan(header));
        return b;
    }

    internal static byte[] Payload(int length) => Enumerable.Range(0, length).Select(i => (byte)(i * 3 + 1)).ToArray();
}
