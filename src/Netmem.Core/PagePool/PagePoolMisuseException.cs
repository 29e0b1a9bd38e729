namespace Netmem;

/// <summary>The kind of page pool misuse caught.</summary>
public enum PagePoolMisuse
{
    /// <summary>The netmem belongs to another pool (or to none).</summary>
    ForeignPool,

    /// <summary>The netmem was already returned and sits in the pool.</summary>
    DoublePut,

    /// <summary>The netmem's pool count already reached zero and it left the pool.</summary>
    PutAfterZero,

    /// <summary>A null handle was given.</summary>
    NullRef,
}

/// <summary>
/// A caller broke the page pool's contract. Raised before anything changed: the netmem is not
/// inserted twice, and the pool's counters still add up.
/// </summary>
public sealed class PagePoolMisuseException : NetmemException
{
    /// <summary>Reports <paramref name="misuse"/> of <paramref name="netmem"/> on pool <paramref name="poolName"/>; <see cref="NetmemException.Errno"/> is EINVAL.</summary>
    /// <param name="misuse">What the caller did wrong.</param>
    /// <param name="poolName">The pool the netmem was returned to, or <c>?</c> when none applies.</param>
    /// <param name="netmem">The netmem that was misused.</param>
    /// <param name="message">Says what happened, naming the netmem and the pool.</param>
    public PagePoolMisuseException(PagePoolMisuse misuse, string poolName, NetmemRef netmem, string message)
        : base(Native.Errno.EINVAL, message)
    {
        Misuse = misuse;
        PoolName = poolName;
        Netmem = netmem;
    }

    /// <summary>A misuse with no detail (<see cref="PagePoolMisuse.NullRef"/>, EINVAL); for serializers and tests.</summary>
    public PagePoolMisuseException() : this(PagePoolMisuse.NullRef, "?", NetmemRef.Null, "page pool misuse") { }

    /// <summary>A misuse described by <paramref name="message"/> only (<see cref="PagePoolMisuse.NullRef"/>, EINVAL).</summary>
    public PagePoolMisuseException(string message) : this(PagePoolMisuse.NullRef, "?", NetmemRef.Null, message) { }

    /// <summary>A misuse described by <paramref name="message"/>, caused by <paramref name="innerException"/>.</summary>
    public PagePoolMisuseException(string message, Exception innerException) : base(message, innerException) => PoolName = "?";

    /// <summary>What the caller did wrong: a foreign pool, a double put, a put after the count reached zero, or a null handle.</summary>
    public PagePoolMisuse Misuse { get; }

    /// <summary>Name of the pool the netmem was returned to; <c>?</c> when the netmem belongs to no live pool.</summary>
    public string PoolName { get; }

    /// <summary>The netmem that was misused (<see cref="NetmemRef.Null"/> for a null put). Nothing changed: the caller still holds what it held.</summary>
    public NetmemRef Netmem { get; }
}
