using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;

namespace Netmem.Native;

/// <summary>
/// A named Linux network namespace (<c>ip netns</c>), for keeping test and demo traffic off the
/// host's interfaces: a TUN device, its addresses, routes and sockets all live inside it.
/// </summary>
/// <remarks>
/// <para>
/// A namespace is joined per OS thread (setns(2) with CLONE_NEWNET changes only the calling
/// thread). <see cref="Run{T}(Func{T})"/> therefore runs its delegate on a dedicated thread that
/// joins the namespace, runs, and moves back: never the caller's thread, which may be a
/// thread-pool thread that later runs unrelated work, and never an async delegate, whose
/// continuations could resume on any thread. What the delegate creates keeps the namespace it was
/// created in: a socket or a TUN descriptor opened inside may be used from any thread afterwards.
/// </para>
/// <para>
/// sysfs (<c>/sys/class/net</c>) shows the namespace of whoever mounted it, not of the thread,
/// so per-interface state inside is read through <c>/proc/thread-self/net</c> on a thread in the
/// namespace, or through <see cref="RunIp"/>.
/// </para>
/// <para>
/// <see cref="Create"/> owns the namespace it makes and <see cref="Dispose"/> deletes it
/// (<c>ip netns del</c>); interfaces inside are destroyed by the kernel once nothing holds the
/// namespace any more (open TUN descriptors and sockets created inside do hold it).
/// </para>
/// </remarks>
public sealed class NetNamespace : IDisposable
{
    /// <summary>Where <c>ip netns</c> keeps its bind mounts.</summary>
    public const string NetnsDirectory = "/run/netns";

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
    /// <exception cref="IpCommandException"><c>ip netns add</c> failed (e.g. not root).</exception>
    public static NetNamespace Create(string prefix = "netmem")
    {
        ValidateName(prefix);
        string name = string.Create(CultureInfo.InvariantCulture, $"{prefix}-{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(8, lowercase: true)}");
        IpCommand.Run(["netns", "add", name]);
        try
        {
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
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                result = RunOnThisThread(nsFd, action);
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
            Name = "netns:" + Name,
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
    /// Runs <c>ip -n NAME <paramref name="args"/></c> and returns its standard output.
    /// </summary>
    /// <exception cref="IpCommandException">The command failed; its standard error is in the message.</exception>
    public string RunIp(params string[] args)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        return IpCommand.Run(["-n", Name, .. args]);
    }

    /// <summary>Whether a namespace of this name is still listed in <see cref="NetnsDirectory"/>.</summary>
    public bool Exists => File.Exists(Path.Combine(NetnsDirectory, Name));

    /// <summary>Closes the descriptor and, for a namespace made by <see cref="Create"/>, deletes it.</summary>
    /// <exception cref="IpCommandException">Deleting failed and the namespace is still there.</exception>
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
            try
            {
                IpCommand.Run(["netns", "del", Name]);
            }
            catch (IpCommandException) when (!Exists)
            {
                // Someone else removed it first: the goal is met.
            }
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

    private static void TryDelete(string name)
    {
        try
        {
            IpCommand.Run(["netns", "del", name]);
        }
        catch (IpCommandException)
        {
            // Best effort while already failing.
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

        if (FindOnPath("ip") is null)
        {
            return "the 'ip' command (iproute2) is not on PATH.";
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

    private static string? FindOnPath(string program)
    {
        string path = Environment.GetEnvironmentVariable("PATH") ?? "/usr/sbin:/usr/bin:/sbin:/bin";
        foreach (string dir in path.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, program);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }
}
