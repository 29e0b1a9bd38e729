using Netmem.Native;

namespace Netmem;

/// <summary>
/// A Netmem operation refused. Carries an <see cref="Native.Errno"/> value and the message a
/// netlink extack would carry, so a caller can both branch on the code and log the reason.
/// </summary>
/// <remarks>
/// When the refused thing is one of the caller's arguments (a page pool parameter, the queues of
/// a bind), <see cref="Exception.InnerException"/> is an <see cref="ArgumentException"/> naming
/// it, and <see cref="ParamName"/> returns that name: the errno the kernel would give and the
/// .NET argument convention together. <c>docs/errors.md</c> lists every refusal.
/// </remarks>
public class NetmemException : Exception
{
    /// <summary>A refusal with <paramref name="errno"/> and the extack-style reason.</summary>
    /// <param name="errno">The errno, e.g. <see cref="Native.Errno.EOPNOTSUPP"/>.</param>
    /// <param name="message">The reason, without the errno.</param>
    public NetmemException(int errno, string message)
        : base($"{message} ({Native.Errno.Name(errno)})")
    {
        Errno = errno;
        Reason = message;
    }

    /// <summary>A refusal with <paramref name="errno"/> and the reason, caused by <paramref name="innerException"/>.</summary>
    /// <param name="errno">The errno.</param>
    /// <param name="message">The reason, without the errno.</param>
    /// <param name="innerException">The cause; an <see cref="ArgumentException"/> when an argument was refused.</param>
    public NetmemException(int errno, string message, Exception? innerException)
        : base($"{message} ({Native.Errno.Name(errno)})", innerException)
    {
        Errno = errno;
        Reason = message;
    }

    /// <summary>An <c>EINVAL</c> refusal with a generic reason.</summary>
    public NetmemException() : this(Native.Errno.EINVAL, "invalid operation") { }

    /// <summary>An <c>EINVAL</c> refusal with <paramref name="message"/> as the reason.</summary>
    /// <param name="message">The reason.</param>
    public NetmemException(string message) : this(Native.Errno.EINVAL, message) { }

    /// <summary>An <c>EINVAL</c> refusal with <paramref name="message"/>, caused by <paramref name="innerException"/>.</summary>
    /// <param name="message">The reason.</param>
    /// <param name="innerException">The cause.</param>
    public NetmemException(string message, Exception innerException) : base(message, innerException)
    {
        Errno = Native.Errno.EINVAL;
        Reason = message;
    }

    /// <summary>The errno of the refusal (EINVAL, EOPNOTSUPP, ...).</summary>
    public int Errno { get; }

    /// <summary>The human-readable reason, without the errno suffix.</summary>
    public string Reason { get; }

    /// <summary>The symbolic errno name, e.g. "EOPNOTSUPP".</summary>
    public string ErrnoName => Native.Errno.Name(Errno);

    /// <summary>The argument that was refused, or null when the refusal is about state rather than an argument.</summary>
    public string? ParamName => (InnerException as ArgumentException)?.ParamName;

    /// <summary>
    /// The refusal of an argument that the kernel refuses with <paramref name="errno"/>: a
    /// <see cref="NetmemException"/> whose inner exception is an <see cref="ArgumentException"/>
    /// for <paramref name="paramName"/>.
    /// </summary>
    /// <param name="errno">The kernel's errno for this refusal.</param>
    /// <param name="paramName">The refused parameter (or parameter property, e.g. <c>parameters.Order</c>).</param>
    /// <param name="message">The reason, as the kernel's extack would say it.</param>
    /// <returns>The exception to throw.</returns>
    public static NetmemException InvalidArgument(int errno, string paramName, string message) =>
        new(errno, message, new ArgumentException(message, paramName));
}
