using System.Runtime.InteropServices;

namespace Netmem.Devmem;

/// <summary>Control message types of a devmem receive (the kernel's <c>SCM_DEVMEM_*</c> values).</summary>
public enum DevmemCmsgType : uint
{
    /// <summary><c>SCM_DEVMEM_LINEAR</c>: bytes that arrived in readable memory, copied into the caller's buffer.</summary>
    Linear = 78,

    /// <summary><c>SCM_DEVMEM_DMABUF</c>: a payload fragment left in the bound region, named by offset and token.</summary>
    Dmabuf = 79,
}

/// <summary>Flags of a <see cref="DmabufCmsg"/>.</summary>
[Flags]
public enum DmabufCmsgFlags : uint
{
    None = 0,

    /// <summary>This fragment ends a datagram.</summary>
    EndOfPacket = 1,
}

/// <summary>
/// One record of a devmem receive, after the kernel's <c>struct dmabuf_cmsg</c>: where a
/// payload fragment sits in the bound region, its size, the token that hands it back through
/// <see cref="DevmemSocket.DontNeed(ReadOnlySpan{DmabufToken})"/>, and the binding id. For <see cref="DevmemCmsgType.Linear"/>
/// records, <see cref="LinearOffset"/> and <see cref="FragSize"/> name the bytes copied into the
/// caller's linear buffer instead, and there is no token.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
public struct DmabufCmsg
{
    public DevmemCmsgType Type;

    /// <summary>Bytes in the fragment.</summary>
    public uint FragSize;

    /// <summary>Offset of the fragment within the dmabuf region (Dmabuf records).</summary>
    public ulong FragOffset;

    /// <summary>Token to return with <see cref="DevmemSocket.DontNeed(ReadOnlySpan{DmabufToken})"/> (Dmabuf records; 0 for Linear).</summary>
    public uint FragToken;

    /// <summary>Id of the binding the region is bound through (Dmabuf records).</summary>
    public uint DmabufId;

    /// <summary>Offset of the copied bytes in the caller's linear buffer (Linear records).</summary>
    public int LinearOffset;

    public DmabufCmsgFlags Flags;

    public readonly bool IsEndOfPacket => (Flags & DmabufCmsgFlags.EndOfPacket) != 0;

    public override readonly string ToString() => Type == DevmemCmsgType.Dmabuf
        ? $"dmabuf(id {DmabufId}, offset 0x{FragOffset:x}, size {FragSize}, token {FragToken}{(IsEndOfPacket ? ", eop" : "")})"
        : $"linear(at {LinearOffset}, size {FragSize}{(IsEndOfPacket ? ", eop" : "")})";
}

/// <summary>A fragment a driver hands to a socket: a netmem (one pool reference), and the bytes in it.</summary>
public readonly record struct RxFragment(NetmemRef Netmem, int Offset, int Length);
