using System.Runtime.InteropServices;

namespace Netmem.Native;

/// <summary>
/// The raw entry points of the kernel networking plumbing: socket options, bind and send for
/// netlink and AF_XDP sockets, the <c>bpf()</c> system call, and the mount calls a named network
/// namespace needs. No logic lives here.
/// </summary>
internal static unsafe partial class Libc
{
    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    internal static partial int Setsockopt(int fd, int level, int name, void* value, uint length);

    [LibraryImport(Lib, EntryPoint = "getsockopt", SetLastError = true)]
    internal static partial int Getsockopt(int fd, int level, int name, void* value, uint* length);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    internal static partial int Bind(int fd, void* address, uint length);

    [LibraryImport(Lib, EntryPoint = "sendto", SetLastError = true)]
    internal static partial nint Sendto(int fd, void* buffer, nuint length, int flags, void* address, uint addressLength);

    [LibraryImport(Lib, EntryPoint = "recvfrom", SetLastError = true)]
    internal static partial nint Recvfrom(int fd, void* buffer, nuint length, int flags, void* address, uint* addressLength);

    /// <summary>syscall(2) with three arguments (the shape of <c>bpf(cmd, attr, size)</c>).</summary>
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall3(long number, long arg1, void* arg2, long arg3);

    [LibraryImport(Lib, EntryPoint = "mount", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Mount(string? source, string target, string? fsType, ulong flags, nint data);

    [LibraryImport(Lib, EntryPoint = "umount2", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Umount2(string target, int flags);

    [LibraryImport(Lib, EntryPoint = "unlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int Unlink(string path);

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int OpenCreate(string path, int flags, int mode);
}
