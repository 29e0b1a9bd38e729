using System.Buffers;
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
        NetmemDescHeader* h = netmem.Header;
        Unref u = allowDirect && _owned ? UnrefDirect(h) : UnrefAtomic(h);
        if (u != Unref.Last)
        {
            if (u != Unref.Kept)
            {
                ThrowMisuse(netmem, u);
            }

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
    /// zero into the ring, one reservation per 64; what does not fit is released. Any thread.
    /// References are dropped through the same atomic step as <see cref="PutNetmem"/>, all of
    /// them before anything is recycled: a misuse anywhere (a ref from another pool, one already
    /// put, or one given more times than it is held, e.g. twice in this call) gives back the
    /// references this call already dropped and throws, so nothing changed.
    /// </summary>
    /// <exception cref="PagePoolMisuseException">A ref is from another pool, already returned, or put more times than it is held.</exception>
    public void PutBulk(ReadOnlySpan<NetmemRef> netmems)
    {
        // One bit per ref: set when this call dropped its last reference and must recycle it.
        int words = (netmems.Length + 63) >> 6;
        ulong[]? rented = null;
        Span<ulong> last = words <= 16 ? stackalloc ulong[16] : (rented = ArrayPool<ulong>.Shared.Rent(words));
        last = last[..words];
        last.Clear();
        try
        {
            TouchForWrite(netmems);
            for (int i = 0; i < netmems.Length; i++)
            {
                Unref u = UnrefAtomic(netmems[i].Header);
                if (u == Unref.Last)
                {
                    last[i >> 6] |= 1UL << i;
                }
                else if (u != Unref.Kept)
                {
                    // Named before the undo: a duplicate in this call is InPool by our own claim.
                    PagePoolMisuseException e = Misuse(netmems[i], u);
                    UndoUnrefs(netmems[..i], last);
                    throw e;
                }
            }

            RecycleClaimed(netmems, last);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<ulong>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Asks for each descriptor's cache line for writing before the claims: a plain store of the
    /// unchanged <see cref="NetmemDescHeader.Magic"/> (.NET has no write prefetch). Each line was
    /// last written on the consumer's CPU when it handed the netmem out, and a locked claim waits
    /// for its line before the next can start; the stores go into the store buffer together, so
    /// the lines travel at once and the claims then find them here. Writing the value the field
    /// already holds changes nothing for any reader.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void TouchForWrite(ReadOnlySpan<NetmemRef> netmems)
    {
        for (int i = 0; i < netmems.Length; i++)
        {
            NetmemDescHeader* h = netmems[i].Header;
            if (h != null)
            {
                Volatile.Write(ref h->Magic, h->Magic);
            }
        }
    }

    /// <summary>Recycles the refs whose bit is set in <paramref name="last"/> into the ring, 64 to a reservation.</summary>
    private void RecycleClaimed(ReadOnlySpan<NetmemRef> netmems, ReadOnlySpan<ulong> last)
    {
        Span<nuint> batch = stackalloc nuint[RefillBatch];
        int n = 0;
        for (int i = 0; i < netmems.Length; i++)
        {
            if ((last[i >> 6] & (1UL << i)) == 0)
            {
                continue;
            }

            NetmemRef r = netmems[i];
            if (_dmaSyncDev)
            {
                SyncForDevice(-1);
            }

            if (!TryPark(r, r.Header))
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

    /// <summary>
    /// Gives back, newest first, the references a refused <see cref="PutBulk"/> already dropped:
    /// a netmem whose last reference was claimed goes back in flight with count 1 (the value the
    /// claim left), any other gets its reference back. A claimed netmem goes back as
    /// InFlightShared, whichever state it was claimed from: an earlier ref of the same netmem in
    /// this call may have dropped a reference that is being given back too, and the counted
    /// path is right for any count. No other thread can have taken a claimed netmem meanwhile:
    /// it is in no cache or ring yet.
    /// </summary>
    private static void UndoUnrefs(ReadOnlySpan<NetmemRef> done, ReadOnlySpan<ulong> last)
    {
        for (int i = done.Length - 1; i >= 0; i--)
        {
            NetmemDescHeader* h = done[i].Header;
            if ((last[i >> 6] & (1UL << i)) != 0)
            {
                Volatile.Write(ref h->State, (int)NetmemState.InFlightShared);
            }
            else
            {
                Interlocked.Increment(ref h->PpRefCount);
            }
        }
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

    /// <summary>What dropping one pool reference did.</summary>
    private enum Unref
    {
        /// <summary>Other references remain; nothing else to do.</summary>
        Kept,

        /// <summary>It was the last: the caller now owns the netmem, marked InPool, and must recycle or release it.</summary>
        Last,

        /// <summary>Refused: the netmem was already InPool (a double put). Nothing changed.</summary>
        DoublePut,

        /// <summary>Refused: not this pool's, or its count is already zero. Nothing changed.</summary>
        Refused,
    }

    /// <summary>
    /// Drops one reference from any thread. A netmem with a single holder is claimed by one CAS
    /// of its <see cref="NetmemDescHeader.PoolState"/> from (this pool, InFlight) to (this pool,
    /// InPool): the owner check, the state check and the claim are one atomic step, so of several
    /// threads putting the same netmem at once exactly one gets <see cref="Unref.Last"/> and the
    /// others <see cref="Unref.DoublePut"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Unref UnrefAtomic(NetmemDescHeader* h)
    {
        if (h == null)
        {
            return Unref.Refused;
        }

        long single = NetmemDescHeader.MakePoolState(_id, NetmemState.InFlight);
        long seen = Interlocked.CompareExchange(ref h->PoolState, NetmemDescHeader.MakePoolState(_id, NetmemState.InPool), single);
        return seen == single ? Unref.Last : UnrefOther(h, seen);
    }

    /// <summary>
    /// Drops one reference on the owned pool's consumer thread (<c>allowDirect</c>) with a plain
    /// read and write: the fast path pays no atomic. The caller guarantees that no other thread
    /// puts this netmem at the same time.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Unref UnrefDirect(NetmemDescHeader* h)
    {
        if (h == null)
        {
            return Unref.Refused;
        }

        long seen = h->PoolState;
        if (seen != NetmemDescHeader.MakePoolState(_id, NetmemState.InFlight))
        {
            return UnrefOther(h, seen);
        }

        h->PoolState = NetmemDescHeader.MakePoolState(_id, NetmemState.InPool);
        return Unref.Last;
    }

    /// <summary>
    /// The put did not find a single-holder netmem of this pool (<paramref name="seen"/> is what
    /// it found): count a shared one down, or name the refusal. Nothing changed on a refusal.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Unref UnrefOther(NetmemDescHeader* h, long seen)
    {
        if ((int)(seen >> 32) != _id)
        {
            return Unref.Refused;
        }

        return (NetmemState)(int)seen switch
        {
            NetmemState.InFlightShared => UnrefShared(h),
            NetmemState.InPool => Unref.DoublePut,
            _ => Unref.Refused,
        };
    }

    /// <summary>
    /// The last reference of a netmem that had several: one CAS moves it from InFlightShared to
    /// InPool, or finds it already there.
    /// </summary>
    private static Unref ClaimLast(NetmemDescHeader* h)
    {
        int seen = Interlocked.CompareExchange(ref h->State, (int)NetmemState.InPool, (int)NetmemState.InFlightShared);
        if (seen == (int)NetmemState.InFlightShared)
        {
            return Unref.Last;
        }

        return seen == (int)NetmemState.InPool ? Unref.DoublePut : Unref.Refused;
    }

    /// <summary>
    /// More than one reference was given (frags, or holders that took extra pool references):
    /// drop ours atomically. When it was the last, the count is reset to 1 (the value a parked
    /// netmem carries) and the netmem is claimed.
    /// </summary>
    private static Unref UnrefShared(NetmemDescHeader* h)
    {
        long left = Interlocked.Decrement(ref h->PpRefCount);
        if (left > 0)
        {
            return Unref.Kept;
        }

        if (left < 0)
        {
            Interlocked.Increment(ref h->PpRefCount);
            return Unref.Refused;
        }

        h->PpRefCount = 1;
        return ClaimLast(h);
    }

    /// <summary>Takes another pool reference on a netmem in use (a second holder, as an skb clone would).</summary>
    public void GetNetmemReference(NetmemRef netmem)
    {
        NetmemDescHeader* h = netmem.Header;
        if (h == null || h->PoolId != _id || h->State is not ((int)NetmemState.InFlight or (int)NetmemState.InFlightShared))
        {
            ThrowMisuse(netmem, Unref.Refused);
        }

        // Count first, then mark shared: from here on puts count down instead of claiming.
        Interlocked.Increment(ref h->PpRefCount);
        Interlocked.CompareExchange(ref h->State, (int)NetmemState.InFlightShared, (int)NetmemState.InFlight);
    }

    /// <summary>
    /// The last pool reference is gone and claimed (state InPool): true when it may be reused;
    /// false when it was released instead (a holder outside the pool still has the page, or the
    /// pool is destroyed).
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
                int n = _own->Count;
                if (n < AllocCacheSize)
                {
                    _cache[n] = netmem.Value;
                    _own->Count = n + 1;
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
    private void ThrowMisuse(NetmemRef netmem, Unref seen) => throw Misuse(netmem, seen);

    /// <summary>
    /// Names a refused put. <paramref name="seen"/> is what the refusing step saw, so a double
    /// put is named as one even when the winner's netmem has been handed out again since.
    /// </summary>
    private PagePoolMisuseException Misuse(NetmemRef netmem, Unref seen)
    {
        if (netmem.IsNull)
        {
            return new PagePoolMisuseException(PagePoolMisuse.NullRef, Name, netmem, $"{this}: cannot put a null netmem.");
        }

        NetmemDescHeader* h = netmem.Header;
        if (seen == Unref.DoublePut || (h->PoolId == _id && h->State == (int)NetmemState.InPool))
        {
            return new PagePoolMisuseException(PagePoolMisuse.DoublePut, Name, netmem,
                $"{this}: double put of {netmem}: it was already returned and sits in the pool.");
        }

        if ((h->PoolId == _id && h->PpRefCount <= 0) || (h->PoolId == 0 && h->LastPoolId == _id))
        {
            return new PagePoolMisuseException(PagePoolMisuse.PutAfterZero, Name, netmem,
                $"{this}: put of {netmem} after its pool count reached zero and it left the pool.");
        }

        return new PagePoolMisuseException(PagePoolMisuse.ForeignPool, Name, netmem,
            $"{this}: {netmem} belongs to page pool {h->PoolId}, not to this pool.");
    }
}
