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
    /// <summary>No flag: more fragments of the same datagram follow.</summary>
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
    /// <summary>What the record describes: a fragment left in the region (<see cref="DevmemCmsgType.Dmabuf"/>) or bytes copied to the linear buffer (<see cref="DevmemCmsgType.Linear"/>).</summary>
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

    /// <summary>Record flags; <see cref="DmabufCmsgFlags.EndOfPacket"/> marks the last fragment of a datagram.</summary>
    public DmabufCmsgFlags Flags;

    /// <summary>True when this record ends a datagram (<see cref="DmabufCmsgFlags.EndOfPacket"/> is set).</summary>
    public readonly bool IsEndOfPacket => (Flags & DmabufCmsgFlags.EndOfPacket) != 0;

    /// <summary>The record's fields for logs: id, offset, size and token of a dmabuf fragment, or offset and size of linear bytes, and <c>eop</c> at the end of a datagram.</summary>
    public override readonly string ToString() => Type == DevmemCmsgType.Dmabuf
        ? $"dmabuf(id {DmabufId}, offset 0x{FragOffset:x}, size {FragSize}, token {FragToken}{(IsEndOfPacket ? ", eop" : "")})"
        : $"linear(at {LinearOffset}, size {FragSize}{(IsEndOfPacket ? ", eop" : "")})";
}

/// <summary>A fragment a driver hands to a socket: a netmem (one pool reference), and the bytes in it.</summary>
public readonly record struct RxFragment(NetmemRef Netmem, int Offset, int Length);
