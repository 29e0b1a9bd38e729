namespace Netmem;

public sealed unsafe partial class PagePool
{
    /// <summary>
    /// Pool count given to a page while it is being carved into frags, so frags returned early
    /// can never bring it to zero; the unused part is dropped in one step when carving ends.
    /// </summary>
    private const long FragBias = 1L << 40;

    /// <summary>Frags are aligned to a cache line, as DMA-capable buffers are.</summary>
    private const int FragAlign = 64;

    private readonly Lock _fragLock = new();
    private NetmemRef _fragPage;
    private int _fragOffset;
    private long _fragUsers;

    /// <summary>
    /// Carves a buffer of <paramref name="size"/> bytes (rounded up to 64) out of the pool's
    /// current frag page, taking a new page when it does not fit (the kernel's
    /// <c>page_pool_alloc_frag</c>). Each frag holds one pool reference; the page recycles after
    /// its last frag is put. Returns <see cref="NetmemRef.Null"/> when memory is exhausted.
    /// Owned mode: consumer only.
    /// </summary>
    public NetmemRef AllocFrag(int size, out int offset)
    {
        int max = NetmemSize;
        if (size <= 0 || size > max)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, $"Frag size must be in 1..{max} for {this}.");
        }

        if (_owned)
        {
            return AllocFragLocked(size, out offset);
        }

        lock (_fragLock)
        {
            return AllocFragLocked(size, out offset);
        }
    }

    private NetmemRef AllocFragLocked(int size, out int offset)
    {
        size = (size + FragAlign - 1) & ~(FragAlign - 1);
        if (!_fragPage.IsNull && _fragOffset + size > NetmemSize)
        {
            FinishFragPage();
        }

        if (_fragPage.IsNull)
        {
            NetmemRef page = AllocNetmem();
            if (page.IsNull)
            {
                offset = 0;
                return NetmemRef.Null;
            }

            page.Header->PpRefCount = FragBias;
            page.Header->State = (int)NetmemState.InFlightShared;
            _fragPage = page;
            _fragOffset = 0;
            _fragUsers = 0;
        }

        offset = _fragOffset;
        _fragOffset += size;
        _fragUsers++;
        return _fragPage;
    }

    /// <summary>
    /// Splits a netmem the caller holds alone into <paramref name="count"/> pool references, one
    /// per part it hands to a separate holder (the kernel's <c>page_pool_fragment_netmem</c>): a
    /// driver that received several packets into one buffer gives each its own reference, and
    /// the netmem recycles after the last is put. Any thread may put the parts.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is below 1.</exception>
    /// <exception cref="PagePoolMisuseException">The netmem is not this pool's, or is not in flight (already returned).</exception>
    /// <exception cref="InvalidOperationException">The netmem already has several references.</exception>
    public void FragmentNetmem(NetmemRef netmem, long count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        NetmemDescHeader* h = netmem.Header;
        if (h == null || h->PoolId != _id || h->State != (int)NetmemState.InFlight || h->PpRefCount != 1)
        {
            if (h != null && h->PoolId == _id && h->State == (int)NetmemState.InFlightShared)
            {
                throw new InvalidOperationException(
                    $"{this}: cannot fragment {netmem}: it has {h->PpRefCount} references; only a netmem held by one holder can be split.");
            }

            throw Misuse(netmem, Unref.Refused);
        }

        if (count > 1)
        {
            // Count first, then mark shared: from here on puts count down instead of claiming.
            h->PpRefCount = count;
            Volatile.Write(ref h->State, (int)NetmemState.InFlightShared);
        }
    }

    /// <summary>Ends carving: drops the bias frags did not use; recycles the page if every frag already came back.</summary>
    private void FinishFragPage()
    {
        NetmemRef page = _fragPage;
        _fragPage = NetmemRef.Null;
        if (page.IsNull)
        {
            return;
        }

        NetmemDescHeader* h = page.Header;
        if (Interlocked.Add(ref h->PpRefCount, -(FragBias - _fragUsers)) == 0)
        {
            h->PpRefCount = 1;
            if (ClaimLast(h) == Unref.Last)
            {
                Recycle(page, h, allowDirect: _owned);
            }
        }
    }
}
