namespace Netmem.Native;

/// <summary>
/// A libc call failed. Carries the name of the call and the errno it set, so a log line says
/// exactly which system call refused and why.
/// </summary>
public sealed class NativeException : Exception
{
    /// <summary>A call failed with <paramref name="errno"/>; the message adds the C library's description.</summary>
    /// <param name="call">The libc function, e.g. <c>mmap</c>.</param>
    /// <param name="errno">The errno it set.</param>
    public NativeException(string call, int errno)
        : base($"{call} failed: errno {errno} ({Errno.Name(errno)}): {Errno.Describe(errno)}")
    {
        Call = call;
        ErrorNumber = errno;
    }

    /// <summary>
    /// A call failed for a reason the caller can explain better than the C library's text, e.g.
    /// "opening /dev/net/tun needs root or CAP_NET_ADMIN". The errno name stays in the message.
    /// </summary>
    /// <param name="call">The libc function, e.g. <c>open</c>.</param>
    /// <param name="errno">The errno it set.</param>
    /// <param name="explanation">What the failure means for the caller.</param>
    public NativeException(string call, int errno, string explanation)
        : base($"{call} failed: errno {errno} ({Errno.Name(errno)}): {explanation}")
    {
        Call = call;
        ErrorNumber = errno;
    }

    /// <summary>A failure of an unknown call (for serializers and tests).</summary>
    public NativeException() : this("unknown", 0) { }

    /// <summary>A failure described by <paramref name="message"/> alone.</summary>
    /// <param name="message">The message.</param>
    public NativeException(string message) : base(message) { Call = "unknown"; }

    /// <summary>A failure described by <paramref name="message"/>, caused by <paramref name="inner"/>.</summary>
    /// <param name="message">The message.</param>
    /// <param name="inner">The cause.</param>
    public NativeException(string message, Exception inner) : base(message, inner) { Call = "unknown"; }

    /// <summary>The libc function that failed, e.g. <c>mmap</c>.</summary>
    public string Call { get; } = "unknown";

    /// <summary>The errno value the call reported.</summary>
    public int ErrorNumber { get; }
}
