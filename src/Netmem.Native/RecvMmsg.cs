using System.Runtime.InteropServices;

namespace Netmem.Native;

/// <summary><c>struct msghdr</c> (56 bytes on 64-bit Linux).</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MsgHdr
{
    public void* Name;
    public uint NameLen;
    public IoVec* Iov;
    public nuint IovLen;
    public void* Control;
    public nuint ControlLen;
    public int Flags;
}

/// <summary><c>struct mmsghdr</c>: a message header and the bytes received into it (64 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct MMsgHdr
{
    public MsgHdr Hdr;
    public uint Len;
}

/// <summary>
/// <c>recvmmsg(2)</c>: several datagrams in one system call, each into its own buffers. The
/// fallback receive where io_uring is unavailable.
/// </summary>
internal static unsafe partial class RecvMmsg
{
    [LibraryImport("libc", EntryPoint = "recvmmsg", SetLastError = true)]
    private static partial int RecvmmsgRaw(int fd, MMsgHdr* msgs, uint vlen, int flags, void* timeout);

    /// <summary>
    /// Receives up to <paramref name="count"/> datagrams without blocking. Returns how many, 0
    /// when none is queued (EAGAIN) or a signal interrupted; throws for any other error.
    /// </summary>
    public static int Receive(int fd, MMsgHdr* msgs, int count, int flags)
    {
        int n = RecvmmsgRaw(fd, msgs, (uint)count, flags | UdpSocketNative.MSG_DONTWAIT, null);
        if (n >= 0)
        {
            return n;
        }

        int errno = Marshal.GetLastPInvokeError();
        if (errno == Errno.EAGAIN || errno == Errno.EINTR)
        {
            return 0;
        }

        throw new NativeException("recvmmsg", errno);
    }
}
