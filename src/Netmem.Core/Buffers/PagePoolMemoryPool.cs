using System.Buffers;

namespace Netmem.Buffers;

/// <summary>
/// A <see cref="MemoryPool{T}"/> served by a shared-mode <see cref="PagePool"/>: each rent is one
/// page, returned to the pool when the owner is disposed. For code built on
/// <see cref="MemoryPool{T}"/> (System.IO.Pipelines, socket loops on thread-pool threads).
/// </summary>
/// <remarks>
/// The pool must be in shared mode (no consumer binding): renters and returners are arbitrary
/// threads. Each rent allocates one small owner object, as <see cref="MemoryPool{T}.Shared"/>
/// does: owners are not reused, so disposing an owner twice can never give back a page that
/// was since rented to someone else. The page itself is pooled.
/// </remarks>
public sealed class PagePoolMemoryPool : MemoryPool<byte>
{
    private readonly PagePool _pool;
    private readonly bool _ownsPool;

    /// <summary>Serves pages from <paramref name="pool"/>, which must be shared-mode and serve system pages.</summary>
    public PagePoolMemoryPool(PagePool pool, bool ownsPool = false)
    {
        ArgumentNullException.ThrowIfNull(pool);
        if (!pool.IsShared)
        {
            throw new ArgumentException($"{pool} has a consumer binding; a MemoryPool needs a shared-mode pool (no Napi).", nameof(pool));
        }

        if (pool.MemoryProvider is not null)
        {
            throw new ArgumentException($"{pool} serves net_iovs, which have no CPU address.", nameof(pool));
        }

        _pool = pool;
        _ownsPool = ownsPool;
    }

    /// <summary>Creates a pool of its own: shared mode, 4 KiB pages.</summary>
    public PagePoolMemoryPool(int order = 0)
        : this(new PagePool(new PagePoolParams { Order = order, Name = "memory-pool" }), ownsPool: true)
    {
    }

    /// <summary>Bytes in one rented buffer: one page of the pool (<see cref="PagePool.NetmemSize"/>).</summary>
    public override int MaxBufferSize => _pool.NetmemSize;

    /// <summary>The page pool behind this memory pool.</summary>
    public PagePool Pool => _pool;

    /// <summary>Rents one page; <paramref name="minBufferSize"/> -1 or 0 means a whole page.</summary>
    /// <exception cref="ArgumentOutOfRangeException">More than one page was asked for.</exception>
    /// <exception cref="NetmemException">ENOMEM: the arena is exhausted.</exception>
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        if (minBufferSize > MaxBufferSize)
        {
            throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize, $"At most {MaxBufferSize} bytes per rent.");
        }

        NetmemRef page = _pool.AllocNetmem();
        if (page.IsNull)
        {
            throw new NetmemException(Native.Errno.ENOMEM, $"{_pool}: the page arena is exhausted");
        }

        return new NetmemMemoryManager(page, MaxBufferSize);
    }

    /// <summary>Disposes the page pool when this memory pool created it; a pool passed in stays with its owner. Buffers still rented go back to the pool when their owners dispose them.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing && _ownsPool)
        {
            _pool.Dispose();
        }
    }
}
