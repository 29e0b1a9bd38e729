using Netmem.Native;

namespace Netmem;

/// <summary>
/// A Netmem operation refused. Carries an <see cref="Native.Errno"/> value and the message a
/// netlink extack would carry, so a caller can both branch on the code and log the reason.
/// </summary>
public class NetmemException : Exception
{
    public NetmemException(int errno, string message)
        : base($"{message} ({Native.Errno.Name(errno)})")
    {
        Errno = errno;
        Reason = message;
    }

    public NetmemException() : this(Native.Errno.EINVAL, "invalid operation") { }

    public NetmemException(string message) : this(Native.Errno.EINVAL, message) { }

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
}
