namespace Netmem.Genalloc;

/// <summary>
/// <see cref="GenPool.Dispose"/> refused because allocations are outstanding (EBUSY). The pool
/// stays usable; free what is outstanding and dispose again.
/// </summary>
public sealed class GenPoolBusyException : NetmemException
{
    /// <summary>Creates the exception for a pool of <paramref name="size"/> bytes with <paramref name="avail"/> free.</summary>
    public GenPoolBusyException(string poolName, ulong size, ulong avail)
        : base(Native.Errno.EBUSY, $"gen pool '{poolName}' still has {size - avail} bytes allocated (size {size}, avail {avail})")
    {
        PoolName = poolName;
        Size = size;
        Avail = avail;
    }

    /// <summary>Creates the exception with a message only.</summary>
    public GenPoolBusyException(string message) : base(Native.Errno.EBUSY, message)
    {
        PoolName = string.Empty;
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public GenPoolBusyException(string message, Exception innerException) : base(message, innerException)
    {
        PoolName = string.Empty;
    }

    /// <summary>Creates the exception with a default message.</summary>
    public GenPoolBusyException() : this("gen pool has allocations outstanding")
    {
    }

    /// <summary>The name of the pool that refused.</summary>
    public string PoolName { get; }

    /// <summary>The pool's size in bytes when it refused.</summary>
    public ulong Size { get; }

    /// <summary>The pool's available bytes when it refused.</summary>
    public ulong Avail { get; }

    /// <summary>The bytes still allocated (<see cref="Size"/> - <see cref="Avail"/>).</summary>
    public ulong Outstanding => Size - Avail;
}
