using System.Runtime.InteropServices;

namespace Netmem.Native;

/// <summary>
/// Checked wrappers over libc: each returns the call's result or throws a
/// <see cref="NativeException"/> naming the call and its errno. Constants are Linux x86-64/arm64.
/// </summary>
internal static unsafe class Sys
{
    public const int PROT_NONE = 0;
    public const int PROT_READ = 1;
    public const int PROT_WRITE = 2;
    public const int MAP_SHARED = 0x01;
    public const int MAP_PRIVATE = 0x02;
    public const int MAP_FIXED = 0x10;
    public const int MAP_ANONYMOUS = 0x20;
    public const int MAP_NORESERVE = 0x4000;
    public const int MAP_POPULATE = 0x8000;
    public const int MADV_DONTNEED = 4;
    public const int MADV_HUGEPAGE = 14;
    public const uint MFD_CLOEXEC = 1;
    public const uint MFD_ALLOW_SEALING = 2;
    public const int O_RDONLY = 0;
    public const int O_RDWR = 2;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int CLONE_NEWNET = 0x40000000;
    public const short POLLIN = 1;
    public const int EAGAIN = Errno.EAGAIN;

    /// <summary>The size of one base page (4 KiB on every supported target).</summary>
    public static readonly int PageSize = Environment.SystemPageSize;

    private static NativeException Fail(string call) => new(call, Marshal.GetLastPInvokeError());

    /// <summary>mmap; throws on MAP_FAILED.</summary>
    public static nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset)
    {
        nint p = Libc.Mmap(addr, length, prot, flags, fd, offset);
        if (p == -1)
        {
            throw Fail("mmap");
        }

        return p;
    }

    public static void Munmap(nint addr, nuint length)
    {
        if (Libc.Munmap(addr, length) != 0)
        {
            throw Fail("munmap");
        }
    }

    public static void Mprotect(nint addr, nuint length, int prot)
    {
        if (Libc.Mprotect(addr, length, prot) != 0)
        {
            throw Fail("mprotect");
        }
    }

    public static void Madvise(nint addr, nuint length, int advice)
    {
        if (Libc.Madvise(addr, length, advice) != 0)
        {
            throw Fail("madvise");
        }
    }

    /// <summary>madvise that reports failure instead of throwing (advice is a hint).</summary>
    public static bool TryMadvise(nint addr, nuint length, int advice) => Libc.Madvise(addr, length, advice) == 0;

    public static void Mlock(nint addr, nuint length)
    {
        if (Libc.Mlock(addr, length) != 0)
        {
            throw Fail("mlock");
        }
    }

    public static void Munlock(nint addr, nuint length)
    {
        if (Libc.Munlock(addr, length) != 0)
        {
            throw Fail("munlock");
        }
    }

    public static int MemfdCreate(string name, uint flags)
    {
        int fd = Libc.MemfdCreate(name, flags);
        if (fd < 0)
        {
            throw Fail("memfd_create");
        }

        return fd;
    }

    public static void Ftruncate(int fd, long length)
    {
        if (Libc.Ftruncate(fd, length) != 0)
        {
            throw Fail("ftruncate");
        }
    }

    public static void Close(int fd)
    {
        if (Libc.Close(fd) != 0)
        {
            throw Fail("close");
        }
    }

    public static int Dup(int fd)
    {
        int r = Libc.Dup(fd);
        if (r < 0)
        {
            throw Fail("dup");
        }

        return r;
    }

    public static int Open(string path, int flags, int mode = 0)
    {
        int fd = Libc.Open(path, flags, mode);
        if (fd < 0)
        {
            throw Fail("open(" + path + ")");
        }

        return fd;
    }

    /// <summary>read(2). Returns bytes read, or -1 with errno EAGAIN on a non-blocking fd with no data.</summary>
    public static nint Read(int fd, void* buf, nuint count)
    {
        nint n = Libc.Read(fd, buf, count);
        if (n < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EAGAIN || errno == Errno.EINTR)
            {
                return -1;
            }

            throw new NativeException("read", errno);
        }

        return n;
    }

    /// <summary>readv(2): scatter one read into several buffers. -1 for EAGAIN/EINTR.</summary>
    public static nint Readv(int fd, IoVec* iov, int iovcnt)
    {
        nint n = Libc.Readv(fd, iov, iovcnt);
        if (n < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EAGAIN || errno == Errno.EINTR)
            {
                return -1;
            }

            throw new NativeException("readv", errno);
        }

        return n;
    }

    /// <summary>
    /// writev(2): gather one write from several buffers. Returns the bytes written, or the
    /// negated errno (EAGAIN on a full non-blocking descriptor, EIO on a TUN that is down);
    /// EINTR is retried. Never throws, so a transmit path can count a failure without an
    /// exception per packet.
    /// </summary>
    public static nint Writev(int fd, IoVec* iov, int iovcnt)
    {
        while (true)
        {
            nint n = Libc.Writev(fd, iov, iovcnt);
            if (n >= 0)
            {
                return n;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != Errno.EINTR)
            {
                return -errno;
            }
        }
    }

    public static nint Write(int fd, void* buf, nuint count)
    {
        nint n = Libc.Write(fd, buf, count);
        if (n < 0)
        {
            throw Fail("write");
        }

        return n;
    }

    /// <summary>The size of the file behind <paramref name="fd"/> (lseek to end).</summary>
    public static long FileSize(int fd)
    {
        long end = Libc.Lseek(fd, 0, 2);
        if (end < 0)
        {
            throw Fail("lseek");
        }

        return end;
    }

    public static int Ioctl(int fd, nuint request, void* arg)
    {
        int r = Libc.Ioctl(fd, request, arg);
        if (r < 0)
        {
            throw Fail("ioctl(0x" + request.ToString("x", System.Globalization.CultureInfo.InvariantCulture) + ")");
        }

        return r;
    }

    /// <summary>poll(2) on one descriptor. Returns true when it is readable, false on timeout.</summary>
    public static bool WaitReadable(int fd, int timeoutMs)
    {
        PollFd p = new() { Fd = fd, Events = POLLIN };
        int r = Libc.Poll(&p, 1, timeoutMs);
        if (r < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EINTR)
            {
                return false;
            }

            throw new NativeException("poll", errno);
        }

        return r > 0 && (p.Revents & POLLIN) != 0;
    }

    /// <summary>
    /// poll(2) on several descriptors for <see cref="POLLIN"/>. Returns how many are ready (their
    /// <see cref="PollFd.Revents"/> are set), 0 on timeout or EINTR.
    /// </summary>
    public static int Poll(Span<PollFd> fds, int timeoutMs)
    {
        fixed (PollFd* p = fds)
        {
            int r = Libc.Poll(p, (nuint)fds.Length, timeoutMs);
            if (r < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR)
                {
                    return 0;
                }

                throw new NativeException("poll", errno);
            }

            return r;
        }
    }

    /// <summary>
    /// The index of interface <paramref name="name"/> in the calling thread's network namespace, or 0
    /// when there is no such interface.
    /// </summary>
    public static int IfNameToIndex(string name) => (int)Libc.IfNametoindex(name);

    /// <summary>The CPU the calling thread runs on now (it may move at any time after).</summary>
    public static int SchedGetcpu()
    {
        int cpu = Libc.SchedGetcpu();
        if (cpu < 0)
        {
            throw Fail("sched_getcpu");
        }

        return cpu;
    }

    /// <summary>Pins the calling OS thread to one CPU.</summary>
    public static void SchedSetaffinity(int cpu)
    {
        if (cpu < 0 || cpu >= 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(cpu), cpu, "CPU index must be in [0, 1024).");
        }

        ulong* mask = stackalloc ulong[16];
        new Span<ulong>(mask, 16).Clear();
        mask[cpu / 64] = 1UL << (cpu % 64);
        if (Libc.SchedSetaffinity(0, 16 * sizeof(ulong), mask) != 0)
        {
            throw Fail("sched_setaffinity");
        }
    }

    /// <summary>The CPUs the calling thread may run on.</summary>
    public static int[] SchedGetaffinity()
    {
        ulong* mask = stackalloc ulong[16];
        if (Libc.SchedGetaffinity(0, 16 * sizeof(ulong), mask) != 0)
        {
            throw Fail("sched_getaffinity");
        }

        List<int> cpus = [];
        for (int i = 0; i < 1024; i++)
        {
            if ((mask[i / 64] & (1UL << (i % 64))) != 0)
            {
                cpus.Add(i);
            }
        }

        return [.. cpus];
    }

    /// <summary>Moves the calling OS thread into the namespace behind <paramref name="fd"/>.</summary>
    public static void Setns(int fd, int nstype)
    {
        if (Libc.Setns(fd, nstype) != 0)
        {
            throw Fail("setns");
        }
    }

    public static int Gettid() => Libc.Gettid();

    public static int Getpid() => Libc.Getpid();

    public static bool IsRoot => Libc.Geteuid() == 0;
}
