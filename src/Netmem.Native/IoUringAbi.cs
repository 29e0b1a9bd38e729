using System.Runtime.InteropServices;

namespace Netmem.Native;

/// <summary>
/// Constants of the io_uring ABI (include/uapi/linux/io_uring.h) that Netmem uses. The syscall
/// numbers are the same on x86-64 and arm64 (io_uring came after the syscall tables were unified).
/// </summary>
internal static class IoUringAbi
{
    public const long SysSetup = 425;
    public const long SysEnter = 426;
    public const long SysRegister = 427;

    // io_uring_setup flags.
    public const uint SetupCqSize = 1u << 3;
    public const uint SetupClamp = 1u << 4;
    public const uint SetupSubmitAll = 1u << 7;

    // io_uring_params.features.
    public const uint FeatSingleMmap = 1u << 0;
    public const uint FeatNoDrop = 1u << 1;
    public const uint FeatExtArg = 1u << 8;

    // mmap offsets.
    public const long OffSqRing = 0;
    public const long OffCqRing = 0x8000000;
    public const long OffSqes = 0x10000000;

    // io_uring_enter flags.
    public const uint EnterGetEvents = 1u << 0;
    public const uint EnterExtArg = 1u << 3;

    // io_uring_register opcodes.
    public const uint RegisterPbufRing = 22;
    public const uint UnregisterPbufRing = 23;

    // Opcodes.
    public const byte OpNop = 0;
    public const byte OpRecvmsg = 10;
    public const byte OpAsyncCancel = 14;
    public const byte OpRead = 22;

    // sqe.flags.
    public const byte SqeBufferSelect = 1 << 5;

    // sqe.ioprio for send/recv.
    public const ushort RecvMultishot = 1 << 1;

    // cqe.flags.
    public const uint CqeFBuffer = 1u << 0;
    public const uint CqeFMore = 1u << 1;
    public const int CqeBufferShift = 16;

    /// <summary>The largest provided-buffer ring the kernel accepts (entries are a u16 tail apart).</summary>
    public const int MaxBufRingEntries = 32768;
}

/// <summary><c>struct io_sqring_offsets</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoSqringOffsets
{
    public uint Head;
    public uint Tail;
    public uint RingMask;
    public uint RingEntries;
    public uint Flags;
    public uint Dropped;
    public uint Array;
    public uint Resv1;
    public ulong UserAddr;
}

/// <summary><c>struct io_cqring_offsets</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoCqringOffsets
{
    public uint Head;
    public uint Tail;
    public uint RingMask;
    public uint RingEntries;
    public uint Overflow;
    public uint Cqes;
    public uint Flags;
    public uint Resv1;
    public ulong UserAddr;
}

/// <summary><c>struct io_uring_params</c> (120 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoUringParams
{
    public uint SqEntries;
    public uint CqEntries;
    public uint Flags;
    public uint SqThreadCpu;
    public uint SqThreadIdle;
    public uint Features;
    public uint WqFd;
    public fixed uint Resv[3];
    public IoSqringOffsets SqOff;
    public IoCqringOffsets CqOff;
}

/// <summary><c>struct io_uring_sqe</c> (64 bytes), the fields Netmem fills.</summary>
[StructLayout(LayoutKind.Explicit, Size = 64)]
internal struct IoUringSqe
{
    [FieldOffset(0)] public byte Opcode;
    [FieldOffset(1)] public byte Flags;
    [FieldOffset(2)] public ushort Ioprio;
    [FieldOffset(4)] public int Fd;
    [FieldOffset(8)] public ulong Off;
    [FieldOffset(16)] public ulong Addr;
    [FieldOffset(24)] public uint Len;

    /// <summary>msg_flags, rw_flags, cancel_flags: the per-opcode flags word.</summary>
    [FieldOffset(28)] public uint OpFlags;
    [FieldOffset(32)] public ulong UserData;

    /// <summary>buf_group when <see cref="IoUringAbi.SqeBufferSelect"/> is set.</summary>
    [FieldOffset(40)] public ushort BufGroup;
    [FieldOffset(42)] public ushort Personality;
    [FieldOffset(44)] public int SpliceFdIn;
    [FieldOffset(48)] public ulong Addr3;
    [FieldOffset(56)] public ulong Pad2;
}

/// <summary><c>struct io_uring_cqe</c> (16 bytes; Netmem does not set up 32-byte CQEs).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringCqe
{
    public ulong UserData;
    public int Res;
    public uint Flags;
}

/// <summary><c>struct io_uring_buf</c>: one provided-buffer ring entry (16 bytes). Entry 0's <c>resv</c> is the ring's tail.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringBuf
{
    public ulong Addr;
    public uint Len;
    public ushort Bid;
    public ushort Resv;
}

/// <summary><c>struct io_uring_buf_reg</c> (40 bytes), the argument of IORING_REGISTER_PBUF_RING.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct IoUringBufReg
{
    public ulong RingAddr;
    public uint RingEntries;
    public ushort Bgid;
    public ushort Flags;
    public fixed ulong Resv[3];
}

/// <summary>
/// <c>struct io_uring_recvmsg_out</c>: the 16 bytes a multishot recvmsg writes at the start of
/// each provided buffer, followed by the name area, the control area and the payload.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoUringRecvmsgOut
{
    /// <summary>Length of the source address the socket had (may exceed the name area: then it was cut).</summary>
    public uint NameLen;

    /// <summary>Bytes of control messages written.</summary>
    public uint ControlLen;

    /// <summary>The datagram's length (with MSG_TRUNC asked: before truncation).</summary>
    public uint PayloadLen;

    /// <summary>msg_flags: MSG_TRUNC, MSG_CTRUNC.</summary>
    public uint Flags;
}
