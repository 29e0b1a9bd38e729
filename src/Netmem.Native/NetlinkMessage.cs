using System.Buffers.Binary;
using System.Text;

namespace Netmem.Native;

/// <summary>
/// Builds one netlink request: the 16-byte <c>nlmsghdr</c>, a fixed family header, then
/// attributes (<c>struct rtattr</c>: length, type, value, padded to 4 bytes), nested ones
/// included. Setup-path code: it allocates.
/// </summary>
internal sealed class NetlinkMessage
{
    private byte[] _buf = new byte[512];
    private int _len;

    public NetlinkMessage(ushort type, ushort flags)
    {
        _len = 16;
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(4), type);
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(6), flags);
    }

    public ushort Type => BinaryPrimitives.ReadUInt16LittleEndian(_buf.AsSpan(4));

    /// <summary>Appends raw bytes (a family header such as <c>ifinfomsg</c>), padded to 4.</summary>
    public Span<byte> Reserve(int length)
    {
        int start = _len;
        Grow(Align(length));
        _len += Align(length);
        return _buf.AsSpan(start, length);
    }

    public void AddU8(ushort type, byte value) => AddAttribute(type, [value]);

    public void AddU32(ushort type, uint value)
    {
        Span<byte> v = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(v, value);
        AddAttribute(type, v);
    }

    public void AddString(ushort type, string value)
    {
        byte[] s = Encoding.ASCII.GetBytes(value + "\0");
        AddAttribute(type, s);
    }

    public void AddAttribute(ushort type, ReadOnlySpan<byte> value)
    {
        int total = 4 + value.Length;
        Grow(Align(total));
        Span<byte> a = _buf.AsSpan(_len, Align(total));
        a.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(a, (ushort)total);
        BinaryPrimitives.WriteUInt16LittleEndian(a[2..], type);
        value.CopyTo(a[4..]);
        _len += Align(total);
    }

    /// <summary>Opens a nested attribute; close it with <see cref="EndNested"/>.</summary>
    public int BeginNested(ushort type)
    {
        int start = _len;
        Grow(4);
        BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(_len + 2), type);
        _len += 4;
        return start;
    }

    public void EndNested(int start) => BinaryPrimitives.WriteUInt16LittleEndian(_buf.AsSpan(start), (ushort)(_len - start));

    /// <summary>The finished message with its length and sequence number filled in.</summary>
    public ReadOnlySpan<byte> Finish(uint seq)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buf, (uint)_len);
        BinaryPrimitives.WriteUInt32LittleEndian(_buf.AsSpan(8), seq);
        return _buf.AsSpan(0, _len);
    }

    internal static int Align(int n) => (n + 3) & ~3;

    private void Grow(int extra)
    {
        if (_len + extra > _buf.Length)
        {
            Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + extra));
        }
    }
}
