using System.Runtime.CompilerServices;
using Netmem.Diagnostics;
using Netmem.Providers;

namespace Netmem;

public sealed unsafe partial class PagePool
{
    /// <summary>
    /// Drops one pool reference on <paramref name="netmem"/>; the last one recycles it. With
    /// <paramref name="allowDirect"/> the caller guarantees it is the pool's consumer (its NAPI
    /// poll loop), so the netmem may go straight into the alloc cache; otherwise it goes to the
    /// ring, or is released when the ring is full.
    /// </summary>
    /// <param name="netmem">A netmem this pool handed out.</param>
    /// <param name="dmaSyncSize">Bytes the device may have written, to sync for the device on recycle (-1: the pool's MaxLen).</param>
    /// <param name="allowDirect">The caller is the pool's consumer.</param>
    /// <exception cref="PagePoolMisuseException">The netmem is from another pool, already returned, or its count already reached zero.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutNetmem(NetmemRef netmem, int dmaSyncSize, bool allowDirect)
    {
        NetmemDescHeader* h = CheckPut(netmem);
        if (h->PpRefCount != 1 && !UnrefShared(netmem, h))
        {
            return;
        }

        if (_dmaSyncDev)
        {
            SyncForDevice(dmaSyncSize);
        }

        Recycle(netmem, h, allowDirect);
    }

    /// <summary>
    /// Hands the netmem's first <paramref name="dmaSyncSize"/> bytes (at most MaxLen, from
    /// Offset) back to the device before reuse, as <c>page_pool_dma_sync_for_device</c> does.
    /// Pool memory here is cache-coherent, so the sync is a full fence that orders the CPU's
    /// accesses before the device's next write, whatever the size.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void SyncForDevice(int dmaSyncSize)
    {
        if (dmaSyncSize > _p.MaxLen)
        {
            dmaSyncSize = _p.MaxLen;
        }

        if (dmaSyncSize != 0)
        {
            Interlocked.MemoryBarrier();
        }
    }

    /// <summary>Drops the last reference of a whole netmem (the kernel's <c>page_pool_put_full_netmem</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void PutFullNetmem(NetmemRef netmem, bool allowDirect) => PutNetmem(netmem, -1, allowDirect);

    /// <summary>Returns a netmem from the consumer into the alloc cache (the kernel's <c>page_pool_recycle_direct</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RecycleDirect(NetmemRef netmem) => PutNetmem(netmem, -1, allowDirect: true);

    /// <summary>
    /// Drops one reference on each of <paramref name="netmems"/>, then recycles those that hit
    /// zero into the ring with one reservation; what does not fit is released. Any thread.
    /// Every ref is checked before any is put, so a misuse anywhere changes nothing.
    /// </summary>
    public void PutBulk(ReadOnlySpan<NetmemRef> netmems)
    {
        foreach (NetmemRef r in netmems)
        {
            CheckPut(r);
        }

        Span<nuint> batch = stackalloc nuint[RefillBatch];
        int n = 0;
        foreach (NetmemRef r in netmems)
        {
            NetmemDescHeader* h = r.Header;
            if (h->PpRefCount != 1 && !UnrefShared(r, h))
            {
                continue;
            }

            if (_dmaSyncDev)
            {
                SyncForDevice(-1);
            }

            if (!TryPark(r, h))
            {
                continue;
            }

            batch[n++] = r.Value;
            if (n == batch.Length)
            {
                FlushToRing(batch);
                n = 0;
            }
        }

        FlushToRing(batch[..n]);
    }

    /// <summary>Enqueues a batch with one reservation; releases what does not fit.</summary>
    private void FlushToRing(ReadOnlySpan<nuint> batch)
    {
        if (batch.IsEmpty)
        {
            return;
        }

        int done = _ring.EnqueueBurst(batch);
        for (int i = done; i < batch.Length; i++)
        {
            _stats.AddAtomic(Stat.RecycleRingFull);
            ReleaseNetmem(new NetmemRef(batch[i]));
        }
    }

    /// <summary>
    /// Checks a returned ref before anything changes: it must be this pool's and in use.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private NetmemDescHeader* CheckPut(NetmemRef netmem)
    {
        NetmemDescHeader* h = netmem.Header;
        if (h == null || h->PoolId != _id || h->State != (int)NetmemState.InFlight)
        {
            ThrowMisuse(netmem);
        }

        return h;
    }

    /// <summary>
    /// More than one reference is held (frags, or holders that took extra pool references):
    /// drop ours atomically. True when it was the last; the count is then reset to 1, the value
    /// a netmem parked in the pool carries.
    /// </summary>
    private bool UnrefShared(NetmemRef netmem, NetmemDescHeader* h)
    {
        long left = Interlocked.Decrement(ref h->PpRefCount);
        if (left > 0)
        {
            return false;
        }

        if (left < 0)
        {
            Interlocked.Increment(ref h->PpRefCount);
            ThrowMisuse(netmem);
        }

        h->PpRefCount = 1;
        return true;
    }

    /// <summary>Takes another pool reference on a netmem in use (a second holder, as an skb clone would).</summary>
    public void GetNetmemReference(NetmemRef netmem)
    {
        NetmemDescHeader* h = CheckPut(netmem);
        Interlocked.Increment(ref h->PpRefCount);
    }

    /// <summary>
    /// The last pool reference is gone: marks the netmem parked and returns true when it may be
    /// reused; false when it was released instead (a holder outside the pool still has the page,
    /// or the pool is destroyed).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryPark(NetmemRef netmem, NetmemDescHeader* h)
    {
        if (!netmem.IsNetIov && ((PageDesc*)h)->PageRef != 1)
        {
            // Someone outside the pool still holds the page: it cannot be reused yet.
            RecycleReleasedRefcnt(netmem);
            return false;
        }

        h->State = (int)NetmemState.InPool;
        if (Volatile.Read(ref _destroyState) != 0)
        {
            ReleaseAfterDestroy(netmem);
            return false;
        }

        return true;
    }

    /// <summary>The last pool reference is gone: into the cache, the ring, or released.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Recycle(NetmemRef netmem, NetmemDescHeader* h, bool allowDirect)
    {
        if (!TryPark(netmem, h))
        {
            return;
        }

        if (_owned)
        {
            if (allowDirect)
            {
                int n = _cacheCount;
                if (n < AllocCacheSize)
                {
                    _cache[n] = netmem.Value;
                    _cacheCount = n + 1;
                    _cs[(int)Stat.RecycleCached]++;
                    return;
                }

                _cs[(int)Stat.RecycleCacheFull]++;
            }

            RecycleInRing(netmem.Value);
            return;
        }

        RecycleShared(netmem.Value);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RecycleReleasedRefcnt(NetmemRef netmem)
    {
        _stats.AddAtomic(Stat.RecycleReleasedRefcnt);
        ReleaseNetmem(netmem);
    }

    /// <summary>Into the ring from any thread; when it is full, released.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void RecycleInRing(nuint value)
    {
        // recycle.ring is not counted here: it is the ring's own enqueue count (see Snapshot),
        // which keeps an atomic add off the remote return path.
        if (_ring.TryEnqueue(value))
        {
            return;
        }

        _stats.AddAtomic(Stat.RecycleRingFull);
        ReleaseNetmem(new NetmemRef(value));
    }

    /// <summary>Gives a netmem back to its provider or the arena, and counts the release. Any thread.</summary>
    internal void ReleaseNetmem(NetmemRef netmem)
    {
        NetmemDescHeader* h = netmem.Header;
        h->PoolId = 0;
        bool trace = NetmemEventSource.Log.NetmemOn();
        if (trace)
        {
            NetmemEventSource.Log.PagePoolStateRelease(_id, netmem.Value, Pfn(netmem), _stats.Snapshot().ReleaseCount + 1);
        }

        if (netmem.IsNetIov)
        {
            h->State = (int)NetmemState.Free;
            if (_mp is null)
            {
                throw new InvalidOperationException($"{this} holds {netmem} but has no memory provider to release it to.");
            }

            _mp.ReleaseNetmem(this, netmem);
        }
        else if (!(MemoryProviderToggle.IsEnabled && _mp is not null) || _mp.ReleaseNetmem(this, netmem))
        {
            PageDesc* d = (PageDesc*)h;
            if (Interlocked.Decrement(ref d->PageRef) == 0)
            {
                PageArena.ReturnToOwner(d);
            }
            else
            {
                // Other holders keep the page; the last PageArena.PutPage frees it.
                h->State = (int)NetmemState.Free;
                h->PpRefCount = 0;
            }
        }

        _stats.AddAtomic(Stat.Release);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowMisuse(NetmemRef netmem)
    {
        if (netmem.IsNull)
        {
            throw new PagePoolMisuseException(PagePoolMisuse.NullRef, Name, netmem, $"{this}: cannot put a null netmem.");
        }

        NetmemDescHeader* h = netmem.Header;
        if (h->PoolId == _id && h->State == (int)NetmemState.InPool)
        {
            throw new PagePoolMisuseException(PagePoolMisuse.DoublePut, Name, netmem,
                $"{this}: double put of {netmem}: it was already returned and sits in the pool.");
        }

        if ((h->PoolId == _id && h->PpRefCount <= 0) || (h->PoolId == 0 && h->LastPoolId == _id))
        {
            throw new PagePoolMisuseException(PagePoolMisuse.PutAfterZero, Name, netmem,
                $"{this}: put of {netmem} after its pool count reached zero and it left the pool.");
        }

        throw new PagePoolMisuseException(PagePoolMisuse.ForeignPool, Name, netmem,
            $"{this}: {netmem} belongs to page pool {h->PoolId}, not to this pool.");
    }
}
