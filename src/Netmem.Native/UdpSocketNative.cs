using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Netmem.Native;

/// <summary>
/// The socket calls a UDP receiver makes directly (socket, setsockopt, bind, getsockname), the
/// socket address layouts it reads, and the eventfd that wakes a blocked receive. Checked: each
/// call throws <see cref="NativeException"/> with its errno.
/// </summary>
internal static unsafe partial class UdpSocketNative
{
    private const string Lib = "libc";

    public const int AF_INET = 2;
    public const int AF_INET6 = 10;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int IPPROTO_UDP = 17;
    public const int SOL_SOCKET = 1;
    public const int SO_REUSEADDR = 2;
    public const int SO_RCVBUF = 8;
    public const int SO_REUSEPORT = 15;
    public const int SO_RCVBUFFORCE = 33;
    public const int SO_RXQ_OVFL = 40;
    public const int IPPROTO_IPV6 = 41;
    public const int IPV6_V6ONLY = 26;
    public const int MSG_CTRUNC = 0x8;
    public const int MSG_TRUNC = 0x20;
    public const int MSG_DONTWAIT = 0x40;
    public const int EFD_NONBLOCK = 0x800;
    public const int EFD_CLOEXEC = 0x80000;

    /// <summary>sizeof(struct sockaddr_in6): the name area that holds either family.</summary>
    public const int SockAddrSize = 28;

    /// <summary><c>UDP_GRO</c> (level <see cref="IPPROTO_UDP"/>): the kernel may coalesce datagrams of one flow and says their size in a control message.</summary>
    public const int UDP_GRO = 104;

    /// <summary><c>UDP_SEGMENT</c> (level <see cref="IPPROTO_UDP"/>): a send is cut into datagrams of this size (UDP GSO).</summary>
    public const int UDP_SEGMENT = 103;

    /// <summary>Two CMSG_SPACE(sizeof(u32)): room for the SO_RXQ_OVFL and the UDP_GRO control messages.</summary>
    public const int ControlSpace = 48;

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    private static partial int SocketRaw(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    private static partial int BindRaw(int fd, byte* addr, int addrlen);

    [LibraryImport(Lib, EntryPoint = "getsockname", SetLastError = true)]
    private static partial int GetsocknameRaw(int fd, byte* addr, int* addrlen);

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    private static partial int SetsockoptRaw(int fd, int level, int name, void* value, int len);

    [LibraryImport(Lib, EntryPoint = "getsockopt", SetLastError = true)]
    private static partial int GetsockoptRaw(int fd, int level, int name, void* value, int* len);

    [LibraryImport(Lib, EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventfdRaw(uint initval, int flags);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteRaw(int fd, void* buf, nuint count);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    private static partial nint ReadRaw(int fd, void* buf, nuint count);

    private static NativeException Fail(string call) => new(call, Marshal.GetLastPInvokeError());

    /// <summary>
    /// A close-on-exec UDP socket of <paramref name="family"/>, left blocking: io_uring arms its
    /// own poll on it (an O_NONBLOCK file would make it complete with EAGAIN instead), and
    /// recvmmsg passes MSG_DONTWAIT per call.
    /// </summary>
    public static int Socket(AddressFamily family)
    {
        int fd = SocketRaw(family == AddressFamily.InterNetworkV6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
        if (fd < 0)
        {
            throw Fail("socket");
        }

        return fd;
    }

    /// <summary>setsockopt with an int value.</summary>
    public static void SetInt(int fd, int level, int name, int value, string what)
    {
        if (SetsockoptRaw(fd, level, name, &value, sizeof(int)) != 0)
        {
            throw Fail("setsockopt(" + what + ")");
        }
    }

    /// <summary>setsockopt with an int value; false (errno kept) when the kernel refused it.</summary>
    public static bool TrySetInt(int fd, int level, int name, int value) => SetsockoptRaw(fd, level, name, &value, sizeof(int)) == 0;

    /// <summary>getsockopt of an int value.</summary>
    public static int GetInt(int fd, int level, int name, string what)
    {
        int value = 0;
        int len = sizeof(int);
        if (GetsockoptRaw(fd, level, name, &value, &len) != 0)
        {
            throw Fail("getsockopt(" + what + ")");
        }

        return value;
    }

    /// <summary>bind(2). Returns 0 or the errno (the caller explains EADDRINUSE in its own words).</summary>
    public static int Bind(int fd, IPEndPoint endpoint)
    {
        byte* sa = stackalloc byte[SockAddrSize];
        int len = WriteSockAddr(endpoint, sa);
        return BindRaw(fd, sa, len) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>The address the socket is bound to (the port the kernel chose for port 0).</summary>
    public static IPEndPoint GetSockName(int fd)
    {
        byte* sa = stackalloc byte[SockAddrSize];
        int len = SockAddrSize;
        if (GetsocknameRaw(fd, sa, &len) != 0)
        {
            throw Fail("getsockname");
        }

        return ReadSockAddr(sa, len, out _).ToIPEndPoint();
    }

    /// <summary>Writes <paramref name="endpoint"/> as a sockaddr_in or sockaddr_in6; returns its length.</summary>
    public static int WriteSockAddr(IPEndPoint endpoint, byte* sa)
    {
        new Span<byte>(sa, SockAddrSize).Clear();
        var s = new Span<byte>(sa, SockAddrSize);
        if (endpoint.AddressFamily == AddressFamily.InterNetworkV6)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(s, AF_INET6);
            BinaryPrimitives.WriteUInt16BigEndian(s[2..], (ushort)endpoint.Port);
            endpoint.Address.TryWriteBytes(s.Slice(8, 16), out _);
            BinaryPrimitives.WriteUInt32LittleEndian(s[24..], (uint)endpoint.Address.ScopeId);
            return 28;
        }

        BinaryPrimitives.WriteUInt16LittleEndian(s, AF_INET);
        BinaryPrimitives.WriteUInt16BigEndian(s[2..], (ushort)endpoint.Port);
        endpoint.Address.TryWriteBytes(s.Slice(4, 4), out _);
        return 16;
    }

    /// <summary>
    /// Reads a sockaddr_in or sockaddr_in6 of <paramref name="len"/> bytes without allocating.
    /// False in <paramref name="valid"/> when the family is neither or the length too short.
    /// </summary>
    public static SockAddr ReadSockAddr(byte* sa, int len, out bool valid)
    {
        ushort family = len >= 2 ? *(ushort*)sa : (ushort)0;
        if (family == AF_INET && len >= 16)
        {
            valid = true;
            return SockAddr.FromIPv4(BinaryPrimitives.ReverseEndianness(*(ushort*)(sa + 2)), new ReadOnlySpan<byte>(sa + 4, 4));
        }

        if (family == AF_INET6 && len >= 28)
        {
            valid = true;
            return SockAddr.FromIPv6(BinaryPrimitives.ReverseEndianness(*(ushort*)(sa + 2)), new ReadOnlySpan<byte>(sa + 8, 16), *(uint*)(sa + 24));
        }

        valid = false;
        return default;
    }

    /// <summary>
    /// A blocking eventfd with count 0 (an io_uring read on it then waits for a signal instead
    /// of completing with EAGAIN). Read it only when it is known to be readable.
    /// </summary>
    public static int EventFd()
    {
        int fd = EventfdRaw(0, EFD_CLOEXEC);
        if (fd < 0)
        {
            throw Fail("eventfd");
        }

        return fd;
    }

    /// <summary>Adds one to an eventfd's count (wakes its readers); a full count is already a wake-up.</summary>
    public static void Signal(int eventFd)
    {
        ulong one = 1;
        _ = WriteRaw(eventFd, &one, sizeof(ulong));
    }

    /// <summary>Resets a readable eventfd's count to zero (blocks when it is zero: poll first).</summary>
    public static void Drain(int eventFd)
    {
        ulong value;
        _ = ReadRaw(eventFd, &value, sizeof(ulong));
    }

    /// <summary>
    /// Scans control messages for SO_RXQ_OVFL (the socket's drop counter when the datagram was
    /// queued; -1 when absent: the kernel attaches it once the counter is not 0) and UDP_GRO
    /// (the size of each datagram the kernel coalesced into this one; 0 when absent: a single
    /// datagram).
    /// </summary>
    public static long ReadControl(byte* control, int length, out int segmentSize)
    {
        long drops = -1;
        segmentSize = 0;
        int off = 0;
        while (off + 16 <= length)
        {
            nuint cmsgLen = *(nuint*)(control + off);
            int level = *(int*)(control + off + 8);
            int type = *(int*)(control + off + 12);
            if (cmsgLen < 16 || (long)off + (long)cmsgLen > length)
            {
                break;
            }

            if (cmsgLen >= 20)
            {
                if (level == SOL_SOCKET && type == SO_RXQ_OVFL)
                {
                    drops = *(uint*)(control + off + 16);
                }
                else if (level == IPPROTO_UDP && type == UDP_GRO)
                {
                    segmentSize = *(int*)(control + off + 16);
                }
            }

            off += (int)((cmsgLen + 7) & ~(nuint)7);
        }

        return drops;
    }
}

/// <summary>
/// A source address read from a sockaddr without allocation: IPv4 kept as 4 bytes, IPv6 as 16,
/// the port in host order.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct SockAddr
{
    public ulong AddressHigh;
    public ulong AddressLow;
    public uint ScopeId;
    public ushort Port;
    public ushort Family;

    public static SockAddr FromIPv4(ushort port, ReadOnlySpan<byte> addr) => new()
    {
        Family = UdpSocketNative.AF_INET,
        Port = port,
        AddressLow = BinaryPrimitives.ReadUInt32BigEndian(addr),
    };

    public static SockAddr FromIPv6(ushort port, ReadOnlySpan<byte> addr, uint scope) => new()
    {
        Family = UdpSocketNative.AF_INET6,
        Port = port,
        AddressHigh = BinaryPrimitives.ReadUInt64BigEndian(addr),
        AddressLow = BinaryPrimitives.ReadUInt64BigEndian(addr[8..]),
        ScopeId = scope,
    };

    public readonly IPEndPoint ToIPEndPoint()
    {
        if (Family == UdpSocketNative.AF_INET)
        {
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(b, (uint)AddressLow);
            return new IPEndPoint(new IPAddress(b), Port);
        }

        Span<byte> a = stackalloc byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(a, AddressHigh);
        BinaryPrimitives.WriteUInt64BigEndian(a[8..], AddressLow);
        return new IPEndPoint(new IPAddress(a, ScopeId), Port);
    }
}
