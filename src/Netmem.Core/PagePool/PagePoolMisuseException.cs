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
    public PagePoolMisuseException(PagePoolMisuse misuse, string poolName, NetmemRef netmem, string message)
        : base(Native.Errno.EINVAL, message)
    {
        Misuse = misuse;
        PoolName = poolName;
        Netmem = netmem;
    }

    public PagePoolMisuseException() : this(PagePoolMisuse.NullRef, "?", NetmemRef.Null, "page pool misuse") { }

    public PagePoolMisuseException(string message) : this(PagePoolMisuse.NullRef, "?", NetmemRef.Null, message) { }

    public PagePoolMisuseException(string message, Exception innerException) : base(message, innerException) => PoolName = "?";

    public PagePoolMisuse Misuse { get; }

    public string PoolName { get; }

    public NetmemRef Netmem { get; }
}
