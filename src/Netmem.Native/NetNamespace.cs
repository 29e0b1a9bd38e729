using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;

namespace Netmem.Native;

/// <summary>
/// A named Linux network namespace (as <c>ip netns</c> names them), for keeping test and demo
/// traffic off the host's interfaces: a TUN device or veth pair, its addresses, routes and
/// sockets all live inside it. Made and deleted with system calls and rtnetlink; no command runs.
/// </summary>
/// <remarks>
/// <para>
/// A namespace is joined per OS thread (setns(2) with CLONE_NEWNET changes only the calling
/// thread). <see cref="Run{T}(Func{T})"/> therefore runs its delegate on a dedicated thread that
/// joins the namespace, runs, and moves back: never the caller's thread, which may be a
/// thread-pool thread that later runs unrelated work, and never an async delegate, whose
/// continuations could resume on any thread. What the delegate creates keeps the namespace it was
/// created in: a socket, a netlink socket or a TUN descriptor opened inside may be used from any
/// thread afterwards.
/// </para>
/// <para>
/// sysfs (<c>/sys/class/net</c>) shows the namespace of whoever mounted it, not of the thread,
/// so per-interface state inside is read through <c>/proc/thread-self/net</c> on a thread in the
/// namespace, or through <see cref="OpenRtNetlink"/>.
/// </para>
/// <para>
/// <see cref="Create"/> does what <c>ip netns add</c> does: it makes <see cref="NetnsDirectory"/>
/// a shared mount, creates an empty file there, and on a dedicated thread unshares a new network
/// namespace and bind-mounts it onto that file. <see cref="Dispose"/> unmounts and removes the
/// file; interfaces inside are destroyed by the kernel once nothing holds the namespace any more
/// (open TUN descriptors and sockets created inside do hold it).
/// </para>
/// </remarks>
public sealed class NetNamespace : IDisposable
{
    /// <summary>Where <c>ip netns</c> keeps its bind mounts.</summary>
    public const string NetnsDirectory = "/run/netns";

    private const ulong MsBind = 4096;
    private const ulong MsRec = 16384;
    private const ulong MsShared = 1 << 20;
    private const int MntDetach = 2;
    private const int OCreat = 0x40;
    private const int OExcl = 0x80;
    private const int CapNetAdmin = 12;
    private const int CapSysAdmin = 21;

    private static readonly Lazy<string?> s_unsupportedReason = new(ProbeSupport);

    /// <summary>The namespace file descriptor (<c>/run/netns/NAME</c>), -1 once disposed.</summary>
    private int _fd;

    /// <summary>Whether <see cref="Dispose"/> deletes the namespace.</summary>
    private readonly bool _owned;

    private NetNamespace(string name, int fd, bool owned)
    {
        Name = name;
        _fd = fd;
        _owned = owned;
    }

    /// <summary>The namespace's name as <c>ip netns list</c> shows it.</summary>
    public string Name { get; }

    /// <summary>The open namespace descriptor, valid until <see cref="Dispose"/>.</summary>
    public int Fd
    {
        get
        {
            ObjectDisposedException.ThrowIf(_fd < 0, this);
            return _fd;
        }
    }

    /// <summary>Whether this process can create namespaces and TUN devices; see <see cref="UnsupportedReason"/>.</summary>
    public static bool IsSupported => s_unsupportedReason.Value is null;

    /// <summary>Why <see cref="IsSupported"/> is false (a sentence fit for a skip message), or null.</summary>
    public static string? UnsupportedReason => s_unsupportedReason.Value;

    /// <summary>
    /// Creates a namespace named <c><paramref name="prefix"/>-&lt;pid&gt;-&lt;random&gt;</c>, unique on
    /// the machine, and opens it. Dispose deletes it.
    /// </summary>
    /// <exception cref="NativeException">A system call refused (EPERM without CAP_SYS_ADMIN); the message names it.</exception>
    public static NetNamespace Create(string prefix = "netmem")
    {
        ValidateName(prefix);
        string name = string.Create(CultureInfo.InvariantCulture, $"{prefix}-{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(8, lowercase: true)}");
        string path = Path.Combine(NetnsDirectory, name);
        PrepareNetnsDirectory();
        int marker = Libc.OpenCreate(path, Sys.O_RDONLY | OCreat | OExcl | Sys.O_CLOEXEC, 0);
        if (marker < 0)
        {
            throw new NativeException("open(" + path + ", O_CREAT|O_EXCL)", System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
        }

        _ = Libc.Close(marker);
        try
        {
            RunOnNewThread("netns-add:" + name, () =>
            {
                int home = Sys.Open("/proc/thread-self/ns/net", Sys.O_RDONLY | Sys.O_CLOEXEC);
                try
                {
                    if (Libc.Unshare(Sys.CLONE_NEWNET) != 0)
                    {
                        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
                        throw errno == Errno.EPERM
                            ? new NativeException("unshare(CLONE_NEWNET)", errno, "creating a network namespace needs CAP_SYS_ADMIN; run as root.")
                            : new NativeException("unshare(CLONE_NEWNET)", errno);
                    }

                    try
                    {
                        if (Libc.Mount("/proc/thread-self/ns/net", path, "none", MsBind, 0) != 0)
                        {
                            throw new NativeException("mount(" + path + ", MS_BIND)", System.Runtime.InteropServices.Marshal.GetLastPInvokeError());
                        }
                    }
                    finally
                    {
                        Sys.Setns(home, Sys.CLONE_NEWNET);
                    }
                }
                finally
                {
                    _ = Libc.Close(home);
                }

                return true;
            });
            return new NetNamespace(name, OpenNamespaceFile(name), owned: true);
        }
        catch
        {
            TryDelete(name);
            throw;
        }
    }

    /// <summary>
    /// Opens an existing named namespace without taking ownership: Dispose closes the descriptor
    /// and leaves the namespace in place.
    /// </summary>
    /// <exception cref="NativeException">No namespace has that name (ENOENT), with the path in the message.</exception>
    public static NetNamespace Open(string name)
    {
        ValidateName(name);
        return new NetNamespace(name, OpenNamespaceFile(name), owned: false);
    }

    /// <summary>
    /// Runs <paramref name="action"/> on a new dedicated thread that has joined this namespace,
    /// waits for it, and returns its result or rethrows its exception. The delegate must be
    /// synchronous.
    /// </summary>
    public T Run<T>(Func<T> action)
    {
        ArgumentNullException.ThrowIfNull(action);
        int nsFd = Fd;
        return RunOnNewThread("netns:" + Name, () => RunOnThisThread(nsFd, action));
    }

    /// <summary>Runs <paramref name="action"/> on a new thread, waits, and returns its result or rethrows its exception.</summary>
    private static T RunOnNewThread<T>(string threadName, Func<T> action)
    {
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = action();
            }
#pragma warning disable CA1031 // Any exception is handed back to the caller's thread.
            catch (Exception e)
#pragma warning restore CA1031
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        {
            IsBackground = true,
            Name = threadName,
        };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result;
    }

    /// <inheritdoc cref="Run{T}(Func{T})"/>
    public void Run(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        Run<bool>(() =>
        {
            action();
            return true;
        });
    }

    /// <summary>
    /// Opens a route netlink socket inside this namespace (created on a thread that joined it):
    /// links and addresses it changes are this namespace's. The caller disposes it.
    /// </summary>
    internal RtNetlink OpenRtNetlink()
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        return Run(RtNetlink.Open);
    }

    /// <summary>Whether a namespace of this name is still listed in <see cref="NetnsDirectory"/>.</summary>
    public bool Exists => File.Exists(Path.Combine(NetnsDirectory, Name));

    /// <summary>Closes the descriptor and, for a namespace made by <see cref="Create"/>, deletes it.</summary>
    /// <exception cref="NativeException">Unmounting or removing the name failed and the namespace is still there.</exception>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd < 0)
        {
            return;
        }

        _ = Libc.Close(fd);
        if (_owned)
        {
            Delete(Name);
        }
    }

    private static T RunOnThisThread<T>(int nsFd, Func<T> action)
    {
        // Open the way back before leaving: /proc/thread-self names this thread's own namespace.
        int home = Sys.Open("/proc/thread-self/ns/net", Sys.O_RDONLY | Sys.O_CLOEXEC);
        try
        {
            Sys.Setns(nsFd, Sys.CLONE_NEWNET);
            try
            {
                return action();
            }
            finally
            {
                Sys.Setns(home, Sys.CLONE_NEWNET);
            }
        }
        finally
        {
            _ = Libc.Close(home);
        }
    }

    private static int OpenNamespaceFile(string name)
    {
        string path = Path.Combine(NetnsDirectory, name);
        int fd = Libc.Open(path, Sys.O_RDONLY | Sys.O_CLOEXEC, 0);
        if (fd >= 0)
        {
            return fd;
        }

        int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
        string why = errno == Errno.ENOENT
            ? $"there is no network namespace named '{name}' ({path} does not exist; see 'ip netns list')."
            : Errno.Describe(errno);
        throw new NativeException("open(" + path + ")", errno, why);
    }

    private static void ValidateName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.') || name[0] == '.')
            {
                throw new ArgumentException($"'{name}' is not a valid namespace name: use letters, digits, '-', '_' and '.'.", nameof(name));
            }
        }
    }

    /// <summary>What <c>ip netns del</c> does: detach the bind mount, remove the file.</summary>
    private static void Delete(string name)
    {
        string path = Path.Combine(NetnsDirectory, name);
        if (Libc.Umount2(path, MntDetach) != 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno != Errno.EINVAL && errno != Errno.ENOENT)
            {
                throw new NativeException("umount2(" + path + ")", errno);
            }
        }

        if (Libc.Unlink(path) != 0)
        {
            int errno = System.Runtime.InteropServices.Marshal.GetLastPInvokeError();
            if (errno != Errno.ENOENT)
            {
                throw new NativeException("unlink(" + path + ")", errno);
            }
        }
    }

    private static void TryDelete(string name)
    {
        try
        {
            Delete(name);
        }
        catch (NativeException)
        {
            // Best effort while already failing.
        }
    }

    /// <summary>
    /// Creates <see cref="NetnsDirectory"/> and makes it a shared mount, as iproute2 does, so a
    /// namespace mounted there is seen by mount namespaces created later (<c>ip netns exec</c>).
    /// </summary>
    private static void PrepareNetnsDirectory()
    {
        Directory.CreateDirectory(NetnsDirectory);
        if (Libc.Mount("", NetnsDirectory, "none", MsShared | MsRec, 0) == 0)
        {
            return;
        }

        // Not a mount point yet: bind it onto itself, then make it shared. Best effort: names
        // bound below work without propagation.
        if (Libc.Mount(NetnsDirectory, NetnsDirectory, "none", MsBind | MsRec, 0) == 0)
        {
            _ = Libc.Mount("", NetnsDirectory, "none", MsShared | MsRec, 0);
        }
    }

    private static string? ProbeSupport()
    {
        if (!OperatingSystem.IsLinux())
        {
            return "network namespaces and TUN need Linux.";
        }

        ulong caps = EffectiveCapabilities();
        if ((caps & (1UL << CapNetAdmin)) == 0 || (caps & (1UL << CapSysAdmin)) == 0)
        {
            return "creating network namespaces and TUN devices needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN); this process lacks them.";
        }

        if (!File.Exists(TunFile.DevicePath))
        {
            return $"{TunFile.DevicePath} does not exist (tun module not loaded, or the container does not expose it).";
        }

        if (!File.Exists("/proc/thread-self/ns/net"))
        {
            return "/proc/thread-self/ns/net is missing: /proc is not mounted or the kernel lacks network namespaces.";
        }

        return null;
    }

    private static ulong EffectiveCapabilities()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith("CapEff:", StringComparison.Ordinal))
                {
                    return ulong.Parse(line.AsSpan(7).Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                }
            }
        }
        catch (IOException)
        {
        }

        return Sys.IsRoot ? ulong.MaxValue : 0;
    }
}
