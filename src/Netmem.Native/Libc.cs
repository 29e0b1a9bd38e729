using System.Runtime.InteropServices;

namespace Netmem.Native;

/// <summary>
/// Raw libc entry points, source-generated with <see cref="LibraryImportAttribute"/>. Every call
/// sets the last P/Invoke error so the checked wrappers in <see cref="Sys"/> can report errno.
/// No logic lives here.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    internal static partial nint Mmap(nint addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    internal static partial int Munmap(nint addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "mprotect", SetLastError = true)]
    internal static partial int Mprotect(nint addr, nuint length, int prot);

    [LibraryImport(Lib, EntryPoint = "madvise", SetLastError = true)]
    internal static partial int Madvise(nint addr, nuint length, int advice);

    [LibraryImport(Lib, EntryPoint = "mlock", SetLastError = true)]
    internal static partial int Mlock(nint addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "munlock", SetLastError = true)]
    internal static partial int Munlock(nint addr, nuint length);

    [LibraryImport(Lib, EntryPoint = "memfd_create", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int MemfdCreate(string name, uint flags);

    [LibraryImport(Lib, EntryPoint = "ftruncate", SetLastError = true)]
    internal static partial int Ftruncate(int fd, long length);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "dup", SetLastError = true)]
    internal static partial int Dup(int fd);

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Open(string path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    internal static partial nint Read(int fd, void* buf, nuint count);

    [LibraryImport(Lib, EntryPoint = "readv", SetLastError = true)]
    internal static partial nint Readv(int fd, IoVec* iov, int iovcnt);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    internal static partial nint Write(int fd, void* buf, nuint count);

    [LibraryImport(Lib, EntryPoint = "writev", SetLastError = true)]
    internal static partial nint Writev(int fd, IoVec* iov, int iovcnt);

    [LibraryImport(Lib, EntryPoint = "fstat", SetLastError = true)]
    internal static partial int Fstat(int fd, void* statBuf);

    [LibraryImport(Lib, EntryPoint = "lseek", SetLastError = true)]
    internal static partial long Lseek(int fd, long offset, int whence);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, nuint request, void* arg);

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    internal static partial int Poll(PollFd* fds, nuint nfds, int timeoutMs);

    [LibraryImport(Lib, EntryPoint = "sched_getcpu", SetLastError = true)]
    internal static partial int SchedGetcpu();

    [LibraryImport(Lib, EntryPoint = "sched_setaffinity", SetLastError = true)]
    internal static partial int SchedSetaffinity(int pid, nuint cpusetsize, ulong* mask);

    [LibraryImport(Lib, EntryPoint = "sched_getaffinity", SetLastError = true)]
    internal static partial int SchedGetaffinity(int pid, nuint cpusetsize, ulong* mask);

    [LibraryImport(Lib, EntryPoint = "setns", SetLastError = true)]
    internal static partial int Setns(int fd, int nstype);

    [LibraryImport(Lib, EntryPoint = "unshare", SetLastError = true)]
    internal static partial int Unshare(int flags);

    [LibraryImport(Lib, EntryPoint = "gettid", SetLastError = true)]
    internal static partial int Gettid();

    [LibraryImport(Lib, EntryPoint = "getpid")]
    internal static partial int Getpid();

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    internal static partial uint Geteuid();

    [LibraryImport(Lib, EntryPoint = "if_nametoindex", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial uint IfNametoindex(string name);

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);
}

/// <summary>One element of a scatter read or gather write (<c>struct iovec</c>).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct IoVec
{
    public nint Base;
    public nuint Length;
}

/// <summary><c>struct pollfd</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PollFd
{
    public int Fd;
    public short Events;
    public short Revents;
}
