using System.Runtime.InteropServices;
using System.Text;

namespace Netmem.Native;

/// <summary>
/// The <c>bpf()</c> system call, for what an AF_XDP driver needs: create a map and update its
/// entries, load a program (with the verifier's log in the exception when it refuses), attach
/// it to an interface through a BPF link, and detach the link. Each call returns a file
/// descriptor the caller owns, or throws a <see cref="NativeException"/> naming the command and
/// the errno.
/// </summary>
/// <remarks>
/// <c>union bpf_attr</c> is built in a zeroed stack buffer of <see cref="AttrSize"/> bytes with
/// the fields at the offsets of <c>include/uapi/linux/bpf.h</c>; the kernel requires every byte
/// past the fields a command uses to be zero, and accepts a size smaller than its own union.
/// </remarks>
internal static unsafe class Bpf
{
    /// <summary><c>BPF_PROG_TYPE_XDP</c>.</summary>
    public const int ProgTypeXdp = 6;

    /// <summary><c>BPF_MAP_TYPE_XSKMAP</c>: queue index to AF_XDP socket.</summary>
    public const int MapTypeXskMap = 17;

    /// <summary><c>BPF_XDP</c>, the attach type of an XDP link.</summary>
    public const int AttachTypeXdp = 37;

    /// <summary><c>XDP_FLAGS_SKB_MODE</c>: generic XDP, run by the stack on an skb.</summary>
    public const uint XdpFlagsSkbMode = 1u << 1;

    /// <summary><c>XDP_FLAGS_DRV_MODE</c>: native XDP, run by the driver before an skb exists.</summary>
    public const uint XdpFlagsDrvMode = 1u << 2;

    /// <summary>Bytes of <c>union bpf_attr</c> passed (covers every field used here).</summary>
    internal const int AttrSize = 128;

    private const int CmdMapCreate = 0;
    private const int CmdMapUpdateElem = 2;
    private const int CmdMapDeleteElem = 3;
    private const int CmdProgLoad = 5;
    private const int CmdLinkCreate = 28;
    private const int CmdLinkDetach = 34;

    /// <summary>The verifier's log buffer on a failed load: enough for the programs built here.</summary>
    private const int LogSize = 64 * 1024;

    private static readonly long s_sysBpf = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => 321,
        Architecture.Arm64 => 280,
        _ => -1,
    };

    /// <summary>Creates a map and returns its descriptor.</summary>
    /// <exception cref="NativeException">The kernel refused (EPERM without CAP_BPF or CAP_SYS_ADMIN, EINVAL for sizes the type does not take).</exception>
    public static int MapCreate(int mapType, int keySize, int valueSize, int maxEntries, string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        byte* attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        *(int*)(attr + 0) = mapType;
        *(int*)(attr + 4) = keySize;
        *(int*)(attr + 8) = valueSize;
        *(int*)(attr + 12) = maxEntries;
        WriteName(new Span<byte>(attr + 28, 16), name);
        return (int)Call(CmdMapCreate, attr, "BPF_MAP_CREATE");
    }

    /// <summary>Sets <paramref name="key"/> to <paramref name="value"/> in a map of 4-byte keys and values.</summary>
    /// <exception cref="NativeException">The kernel refused (E2BIG for a key past max_entries, EBADF or EOPNOTSUPP for a value the map does not take).</exception>
    public static void MapUpdate(int mapFd, uint key, uint value)
    {
        byte* attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        *(int*)(attr + 0) = mapFd;
        *(ulong*)(attr + 8) = (ulong)&key;
        *(ulong*)(attr + 16) = (ulong)&value;
        Call(CmdMapUpdateElem, attr, "BPF_MAP_UPDATE_ELEM");
    }

    /// <summary>Removes <paramref name="key"/> from a map of 4-byte keys; false when it was not there (ENOENT).</summary>
    public static bool MapDelete(int mapFd, uint key)
    {
        byte* attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        *(int*)(attr + 0) = mapFd;
        *(ulong*)(attr + 8) = (ulong)&key;
        if (Syscall(CmdMapDeleteElem, attr) == 0)
        {
            return true;
        }

        int errno = Marshal.GetLastPInvokeError();
        return errno == Errno.ENOENT ? false : throw new NativeException("bpf(BPF_MAP_DELETE_ELEM)", errno);
    }

    /// <summary>
    /// Loads a program and returns its descriptor. When the kernel refuses it, the load is tried
    /// once more with the verifier's log on, and the exception carries that log.
    /// </summary>
    /// <exception cref="BpfLoadException">The verifier or the kernel refused the program; <see cref="BpfLoadException.VerifierLog"/> says why.</exception>
    public static int ProgLoad(int progType, ReadOnlySpan<BpfInstruction> instructions, string name, string license = "GPL", int expectedAttachType = 0)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (instructions.IsEmpty)
        {
            throw new ArgumentException("A BPF program needs at least one instruction.", nameof(instructions));
        }

        byte[] licenseBytes = Encoding.ASCII.GetBytes(license + "\0");
        fixed (BpfInstruction* insns = instructions)
        fixed (byte* lic = licenseBytes)
        {
            long fd = TryProgLoad(progType, insns, instructions.Length, lic, name, expectedAttachType, null, 0);
            if (fd >= 0)
            {
                return (int)fd;
            }

            int errno = Marshal.GetLastPInvokeError();
            byte[] log = new byte[LogSize];
            fixed (byte* logBuf = log)
            {
                fd = TryProgLoad(progType, insns, instructions.Length, lic, name, expectedAttachType, logBuf, LogSize);
                if (fd >= 0)
                {
                    // Refused without a log and accepted with one: a transient failure; keep it.
                    return (int)fd;
                }

                errno = Marshal.GetLastPInvokeError();
            }

            int end = Array.IndexOf(log, (byte)0);
            string text = Encoding.UTF8.GetString(log, 0, end < 0 ? log.Length : end).TrimEnd();
            throw new BpfLoadException(name, errno, text);
        }
    }

    /// <summary>
    /// Attaches a program to interface <paramref name="ifIndex"/> of the calling thread's network
    /// namespace through a BPF link and returns the link's descriptor: closing it (or
    /// <see cref="LinkDetach"/>) detaches the program.
    /// </summary>
    /// <exception cref="NativeException">ENODEV for no such interface; EBUSY or EEXIST when another program is attached; EOPNOTSUPP when the driver has no native XDP and <see cref="XdpFlagsDrvMode"/> was asked.</exception>
    public static int LinkCreate(int progFd, int ifIndex, int attachType, uint flags)
    {
        byte* attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        *(int*)(attr + 0) = progFd;
        *(int*)(attr + 4) = ifIndex;
        *(int*)(attr + 8) = attachType;
        *(uint*)(attr + 12) = flags;
        return (int)Call(CmdLinkCreate, attr, "BPF_LINK_CREATE");
    }

    /// <summary>Detaches a link's program; the descriptor stays open (and defunct) until closed.</summary>
    public static void LinkDetach(int linkFd)
    {
        byte* attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        *(int*)(attr + 0) = linkFd;
        Call(CmdLinkDetach, attr, "BPF_LINK_DETACH");
    }

    private static long TryProgLoad(int progType, BpfInstruction* insns, int count, byte* license, string name, int expectedAttachType, byte* log, int logSize)
    {
        byte* attr = stackalloc byte[AttrSize];
        new Span<byte>(attr, AttrSize).Clear();
        *(int*)(attr + 0) = progType;
        *(int*)(attr + 4) = count;
        *(ulong*)(attr + 8) = (ulong)insns;
        *(ulong*)(attr + 16) = (ulong)license;
        *(int*)(attr + 24) = log is null ? 0 : 1;
        *(int*)(attr + 28) = logSize;
        *(ulong*)(attr + 32) = (ulong)log;
        WriteName(new Span<byte>(attr + 48, 16), name);
        *(int*)(attr + 68) = expectedAttachType;
        return Syscall(CmdProgLoad, attr);
    }

    private static long Call(int cmd, byte* attr, string what)
    {
        long r = Syscall(cmd, attr);
        if (r < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw errno == Errno.EPERM
                ? new NativeException("bpf(" + what + ")", errno, "BPF needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN); run as root.")
                : new NativeException("bpf(" + what + ")", errno);
        }

        return r;
    }

    private static long Syscall(int cmd, byte* attr)
    {
        if (s_sysBpf < 0)
        {
            throw new PlatformNotSupportedException("bpf() is wired for x86-64 and arm64 only.");
        }

        return Libc.Syscall3(s_sysBpf, cmd, attr, AttrSize);
    }

    /// <summary>Object names: at most 15 bytes of [A-Za-z0-9_.], NUL-terminated.</summary>
    private static void WriteName(Span<byte> dest, string name)
    {
        int n = 0;
        foreach (char c in name)
        {
            if (n == dest.Length - 1)
            {
                break;
            }

            dest[n++] = char.IsAsciiLetterOrDigit(c) || c is '_' or '.' ? (byte)c : (byte)'_';
        }
    }
}

/// <summary>The kernel refused to load a BPF program; the verifier's log says why.</summary>
public sealed class BpfLoadException : Exception
{
    /// <summary>Creates the exception for program <paramref name="program"/>.</summary>
    public BpfLoadException(string program, int errno, string verifierLog)
        : base($"bpf(BPF_PROG_LOAD) of '{program}' failed: errno {errno} ({Errno.Name(errno)}): {Explain(errno)}" +
            (verifierLog.Length == 0 ? " (the verifier wrote no log)" : "\nverifier log:\n" + verifierLog))
    {
        Program = program;
        ErrorNumber = errno;
        VerifierLog = verifierLog;
    }

    /// <summary>Creates an empty exception.</summary>
    public BpfLoadException() : this("?", 0, string.Empty) { }

    /// <summary>Creates an exception with a message only.</summary>
    public BpfLoadException(string message) : base(message) { }

    /// <summary>Creates an exception with a message and a cause.</summary>
    public BpfLoadException(string message, Exception inner) : base(message, inner) { }

    /// <summary>The program's name.</summary>
    public string Program { get; } = "?";

    /// <summary>The errno of the load (EACCES or EINVAL from the verifier, EPERM without privileges).</summary>
    public int ErrorNumber { get; }

    /// <summary>What the verifier wrote (empty when it wrote nothing, e.g. for EPERM).</summary>
    public string VerifierLog { get; } = string.Empty;

    private static string Explain(int errno) => errno == Errno.EPERM
        ? "loading XDP programs needs CAP_BPF and CAP_NET_ADMIN (or CAP_SYS_ADMIN); run as root."
        : Errno.Describe(errno);
}
