using System.Runtime.InteropServices;
using System.Text;

namespace Netmem.Native;

/// <summary>
/// The Linux TUN character device (<c>/dev/net/tun</c>): create or attach a layer-3 interface and
/// move raw IP packets through its file descriptors.
/// </summary>
/// <remarks>
/// <para>
/// Direction: a packet the kernel <em>transmits</em> on the interface (counted in its
/// <c>tx_packets</c>) is what a <see cref="Read(int, Span{byte})"/> returns, and a packet
/// <see cref="Write(int, ReadOnlySpan{byte})"/> hands in is <em>received</em> by the kernel
/// (<c>rx_packets</c>). A driver's receive path is therefore a read.
/// </para>
/// <para>
/// Every descriptor is opened with <c>O_CLOEXEC</c> so child processes (the <c>ip</c> command)
/// never inherit a queue. The interface is created in the network namespace of the calling
/// <em>thread</em> at the time of <see cref="Open"/>: call it from a thread moved into the
/// target namespace (see <c>NetNamespace.Run</c>). A non-persistent interface disappears when its
/// last queue descriptor closes.
/// </para>
/// <para>
/// One read returns exactly one packet. With <c>IFF_NO_PI</c> the packet starts at the IP
/// header. If the buffer is shorter than the packet, the kernel copies what fits, silently
/// discards the rest and returns the bytes copied (the buffer's length): the only sign is an
/// IP length field larger than the count returned (the parser reports BadLength). Size
/// buffers for the MTU. The device's tx_bytes still counts the whole packet.
/// </para>
/// </remarks>
internal static unsafe class TunFile
{
    /// <summary>The clone device.</summary>
    public const string DevicePath = "/dev/net/tun";

    /// <summary>Layer-3 device: packets start at the IP header.</summary>
    public const short IFF_TUN = 0x0001;

    /// <summary>Layer-2 device (Ethernet frames); not used by Netmem, listed for error text.</summary>
    public const short IFF_TAP = 0x0002;

    /// <summary>One descriptor per queue; every queue opens the same name with this flag.</summary>
    public const short IFF_MULTI_QUEUE = 0x0100;

    /// <summary>No 4-byte <c>struct tun_pi</c> prefix on each packet.</summary>
    public const short IFF_NO_PI = 0x1000;

    /// <summary><c>_IOW('T', 202, int)</c>.</summary>
    public const uint TUNSETIFF = 0x400454ca;

    /// <summary><c>_IOW('T', 217, int)</c>: attach or detach one queue of a multi-queue TUN.</summary>
    public const uint TUNSETQUEUE = 0x400454d9;

    /// <summary>TUNSETQUEUE: the descriptor's queue takes traffic again.</summary>
    public const short IFF_ATTACH_QUEUE = 0x0200;

    /// <summary>TUNSETQUEUE: the kernel stops steering traffic to the descriptor's queue (and drops what it held).</summary>
    public const short IFF_DETACH_QUEUE = 0x0400;

    /// <summary>The longest interface name the kernel accepts (IFNAMSIZ - 1).</summary>
    public const int MaxNameLength = 15;

    /// <summary>The largest number of queues one TUN device may have (MAX_TAP_QUEUES).</summary>
    public const int MaxQueues = 256;

    private const int IfReqSize = 40;
    private const int IfReqFlagsOffset = 16;

    /// <summary>
    /// Opens <see cref="DevicePath"/> and attaches the descriptor to TUN interface
    /// <paramref name="name"/> (IFF_TUN | IFF_NO_PI), creating it if it does not exist. A name
    /// containing <c>%d</c> lets the kernel pick a free number.
    /// </summary>
    /// <param name="name">The interface name, at most <see cref="MaxNameLength"/> bytes.</param>
    /// <param name="multiQueue">Adds IFF_MULTI_QUEUE: further queues open the same name.</param>
    /// <param name="nonBlocking">Sets O_NONBLOCK: reads return -1 instead of waiting.</param>
    /// <param name="actualName">The name the kernel gave the interface.</param>
    /// <returns>The queue's file descriptor; close it with <see cref="Close"/>.</returns>
    /// <exception cref="NativeException">
    /// The device node is missing (ENOENT), the caller lacks CAP_NET_ADMIN (EPERM/EACCES), or the
    /// name is in use by a device with different flags or with its only queue attached
    /// (EINVAL/EBUSY/EEXIST). The message says which.
    /// </exception>
    public static int Open(string name, bool multiQueue, bool nonBlocking, out string actualName)
    {
        ValidateName(name);
        int fd = OpenDevice(nonBlocking);
        try
        {
            actualName = SetInterface(fd, name, (short)(IFF_TUN | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0)));
            return fd;
        }
        catch
        {
            _ = Libc.Close(fd);
            throw;
        }
    }

    /// <summary>
    /// Opens <paramref name="queueCount"/> queue descriptors on one TUN interface. With more than
    /// one queue (or <paramref name="multiQueue"/>) the interface is IFF_MULTI_QUEUE and the kernel
    /// spreads flows across the queues by flow hash; every queue must be read.
    /// </summary>
    /// <returns>One descriptor per queue, queue 0 first. On failure none stays open.</returns>
    public static int[] OpenQueues(string name, int queueCount, bool multiQueue, bool nonBlocking, out string actualName)
    {
        if (queueCount < 1 || queueCount > MaxQueues)
        {
            throw new ArgumentOutOfRangeException(nameof(queueCount), queueCount, $"A TUN device has 1 to {MaxQueues} queues.");
        }

        bool mq = multiQueue || queueCount > 1;
        int[] fds = new int[queueCount];
        int opened = 0;
        try
        {
            fds[0] = Open(name, mq, nonBlocking, out actualName);
            opened = 1;
            for (; opened < queueCount; opened++)
            {
                fds[opened] = Open(actualName, mq, nonBlocking, out _);
            }

            return fds;
        }
        catch
        {
            for (int i = 0; i < opened; i++)
            {
                _ = Libc.Close(fds[i]);
            }

            throw;
        }
    }

    /// <summary>Closes one queue descriptor.</summary>
    public static void Close(int fd) => Sys.Close(fd);

    /// <summary>
    /// Reads one packet into <paramref name="buffer"/>.
    /// </summary>
    /// <returns>
    /// The bytes copied (the packet's length unless the buffer was shorter); -1 when a
    /// non-blocking descriptor has nothing (EAGAIN) or the call was interrupted.
    /// </returns>
    public static int Read(int fd, Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            return Read(fd, p, buffer.Length);
        }
    }

    /// <inheritdoc cref="Read(int, Span{byte})"/>
    public static int Read(int fd, byte* buffer, int length) => (int)Sys.Read(fd, buffer, (nuint)length);

    /// <summary>
    /// Reads one packet with readv(2), its first <paramref name="headerLength"/> bytes into
    /// <paramref name="header"/> and the rest into <paramref name="payload"/>: one system call,
    /// one copy, headers and payload in different memory (e.g. a readable header page and a
    /// payload buffer in a registered region). The split is at a fixed offset, so a driver picks
    /// a header length that covers the headers it expects (the kernel cannot split at the real
    /// header boundary through this interface).
    /// </summary>
    /// <returns>As <see cref="Read(int, Span{byte})"/>; bytes past <paramref name="headerLength"/> went to the payload buffer.</returns>
    public static int ReadScatter(int fd, byte* header, int headerLength, byte* payload, int payloadLength)
    {
        IoVec* iov = stackalloc IoVec[2];
        iov[0] = new IoVec { Base = (nint)header, Length = (nuint)headerLength };
        iov[1] = new IoVec { Base = (nint)payload, Length = (nuint)payloadLength };
        return (int)Sys.Readv(fd, iov, 2);
    }

    /// <inheritdoc cref="ReadScatter(int, byte*, int, byte*, int)"/>
    public static int ReadScatter(int fd, Span<byte> header, Span<byte> payload)
    {
        fixed (byte* h = header)
        fixed (byte* p = payload)
        {
            return ReadScatter(fd, h, header.Length, p, payload.Length);
        }
    }

    /// <summary>
    /// Hands one IP packet to the kernel as if the interface had received it. Returns the bytes
    /// written; -1 on EAGAIN.
    /// </summary>
    public static int Write(int fd, ReadOnlySpan<byte> packet)
    {
        fixed (byte* p = packet)
        {
            nint n = Libc.Write(fd, p, (nuint)packet.Length);
            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EAGAIN)
                {
                    return -1;
                }

                throw new NativeException("write(tun)", errno);
            }

            return (int)n;
        }
    }

    /// <summary>
    /// Waits until one of <paramref name="fds"/> is readable. Returns the index of the first
    /// readable descriptor, or -1 on timeout.
    /// </summary>
    public static int WaitAnyReadable(ReadOnlySpan<int> fds, int timeoutMs)
    {
        Span<PollFd> p = fds.Length <= 64 ? stackalloc PollFd[fds.Length] : new PollFd[fds.Length];
        for (int i = 0; i < fds.Length; i++)
        {
            p[i] = new PollFd { Fd = fds[i], Events = Sys.POLLIN };
        }

        if (Sys.Poll(p, timeoutMs) <= 0)
        {
            return -1;
        }

        for (int i = 0; i < p.Length; i++)
        {
            if ((p[i].Revents & Sys.POLLIN) != 0)
            {
                return i;
            }
        }

        return -1;
    }

    private static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        int bytes = Encoding.UTF8.GetByteCount(name);
        if (bytes > MaxNameLength || name.Contains('/', StringComparison.Ordinal) || name.Contains(' ', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{name}' is not a valid interface name: at most {MaxNameLength} bytes, no '/' or spaces.", nameof(name));
        }
    }

    private static int OpenDevice(bool nonBlocking)
    {
        int flags = Sys.O_RDWR | Sys.O_CLOEXEC | (nonBlocking ? Sys.O_NONBLOCK : 0);
        int fd = Libc.Open(DevicePath, flags, 0);
        if (fd >= 0)
        {
            return fd;
        }

        int errno = Marshal.GetLastPInvokeError();
        string why = errno switch
        {
            Errno.ENOENT => $"{DevicePath} does not exist: load the tun module (modprobe tun) or create the node (mknod {DevicePath} c 10 200).",
            Errno.ENODEV or Errno.ENXIO => $"{DevicePath} exists but no tun driver answers it: load the tun module (modprobe tun).",
            Errno.EPERM or Errno.EACCES => $"opening {DevicePath} needs root or CAP_NET_ADMIN.",
            _ => Errno.Describe(errno),
        };
        throw new NativeException("open(" + DevicePath + ")", errno, why);
    }

    /// <summary>
    /// Attaches or detaches the queue of <paramref name="fd"/> (TUNSETQUEUE) on a multi-queue TUN.
    /// A detached queue receives nothing and the kernel spreads flows over the attached ones; the
    /// packets it held when detached are dropped by the kernel, so read them first.
    /// </summary>
    /// <exception cref="NativeException">
    /// EINVAL: not a multi-queue TUN, or the queue is already in that state; EPERM: not allowed.
    /// </exception>
    public static void SetQueue(int fd, bool attach)
    {
        byte* ifr = stackalloc byte[IfReqSize];
        new Span<byte>(ifr, IfReqSize).Clear();
        *(short*)(ifr + IfReqFlagsOffset) = attach ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
        if (Libc.Ioctl(fd, TUNSETQUEUE, ifr) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new NativeException(attach ? "ioctl(TUNSETQUEUE, IFF_ATTACH_QUEUE)" : "ioctl(TUNSETQUEUE, IFF_DETACH_QUEUE)", errno, Errno.Describe(errno));
        }
    }

    private static string SetInterface(int fd, string name, short flags)
    {
        byte* ifr = stackalloc byte[IfReqSize];
        new Span<byte>(ifr, IfReqSize).Clear();
        Encoding.UTF8.GetBytes(name, new Span<byte>(ifr, MaxNameLength));
        *(short*)(ifr + IfReqFlagsOffset) = flags;
        if (Libc.Ioctl(fd, TUNSETIFF, ifr) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw SetInterfaceError(errno, name, flags);
        }

        ReadOnlySpan<byte> kernelName = new ReadOnlySpan<byte>(ifr, MaxNameLength + 1);
        int nul = kernelName.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? kernelName : kernelName[..nul]);
    }

    private static NativeException SetInterfaceError(int errno, string name, short flags)
    {
        string mode = (flags & IFF_MULTI_QUEUE) != 0 ? "multi-queue TUN" : "single-queue TUN";
        string call = $"ioctl(TUNSETIFF, \"{name}\")";
        switch (errno)
        {
            case Errno.EPERM:
            case Errno.EACCES:
                return new NativeException(call, errno, "creating or attaching a TUN interface needs root or CAP_NET_ADMIN (or ownership of a persistent device).");
            case Errno.EBUSY:
            case Errno.EEXIST:
            case Errno.EINVAL when Sys.IfNameToIndex(name) != 0:
                // The kernel says EINVAL when the existing device is not a TUN of the same queue mode
                // (a TAP, a veth, a multi-queue vs single-queue mismatch) and EBUSY when a
                // single-queue TUN already has its one queue attached.
                return new NativeException(call, errno,
                    $"the interface name '{name}' is in use in this network namespace by a device that cannot attach another {mode} descriptor " +
                    "(different type or flags, or its only queue is already attached); pick another name.");
            case Errno.EINVAL:
                return new NativeException(call, errno, $"the kernel refused name '{name}' with flags 0x{flags:x4} (invalid name or flags).");
            default:
                return new NativeException(call, errno, Errno.Describe(errno));
        }
    }
}
