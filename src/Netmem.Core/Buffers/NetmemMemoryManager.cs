using System.Buffers;

namespace Netmem.Buffers;

/// <summary>
/// Exposes one readable page from a <see cref="PagePool"/> as <see cref="Memory{T}"/>, for APIs
/// that take <see cref="Memory{T}"/> (sockets, streams, pipelines). Disposing puts the page back
/// to its pool. The page is unmanaged memory, so pinning is free.
/// </summary>
/// <remarks>A <c>net_iov</c> cannot be wrapped: it has no CPU address. Dispose is idempotent.</remarks>
public sealed unsafe class NetmemMemoryManager : MemoryManager<byte>
{
    private NetmemRef _page;
    private int _length;

    /// <summary>Wraps <paramref name="page"/> (one pool reference, which Dispose gives back).</summary>
    public NetmemMemoryManager(NetmemRef page, int length)
    {
        if (!page.IsPage)
        {
            throw new InvalidOperationException($"{page} is not a readable page; only pages can be exposed as Memory<byte>.");
        }

        if ((uint)length > (uint)page.Size)
        {
            throw new ArgumentOutOfRangeException(nameof(length), length, $"Length must be 0..{page.Size} for {page}.");
        }

        _page = page;
        _length = length;
    }

    /// <summary>The page behind this memory; null once disposed.</summary>
    public NetmemRef Page => _page;

    /// <summary>The page's first <c>length</c> bytes (the length given to the constructor) as a span over unmanaged memory.</summary>
    /// <exception cref="ObjectDisposedException">The manager was disposed and its page given back.</exception>
    public override Span<byte> GetSpan()
    {
        ObjectDisposedException.ThrowIf(_page.IsNull, this);
        return new Span<byte>((void*)_page.PageAddress, _length);
    }

    /// <summary>Returns a handle to byte <paramref name="elementIndex"/> of the page. The page is unmanaged memory that never moves, so nothing is pinned and <see cref="Unpin"/> has nothing to undo.</summary>
    /// <exception cref="ObjectDisposedException">The manager was disposed.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="elementIndex"/> is negative or past the length.</exception>
    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ObjectDisposedException.ThrowIf(_page.IsNull, this);
        if ((uint)elementIndex > (uint)_length)
        {
            throw new ArgumentOutOfRangeException(nameof(elementIndex));
        }

        return new MemoryHandle((byte*)_page.PageAddress + elementIndex);
    }

    /// <summary>Does nothing: <see cref="Pin"/> pins nothing.</summary>
    public override void Unpin()
    {
    }

    /// <summary>Puts the page back to its pool (<see cref="PagePool.PutNetmemAny"/>) the first time; later calls do nothing.</summary>
    protected override void Dispose(bool disposing)
    {
        NetmemRef page = _page;
        if (page.IsNull)
        {
            return;
        }

        _page = NetmemRef.Null;
        _length = 0;
        PagePool.PutNetmemAny(page);
    }
}
