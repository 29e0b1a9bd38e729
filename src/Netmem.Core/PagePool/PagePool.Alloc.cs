using System.Runtime.CompilerServices;
using Netmem.Diagnostics;
using Netmem.Providers;

namespace Netmem;

public sealed unsafe partial class PagePool
{
    /// <summary>
    /// Allocates one netmem (a page, or a <c>net_iov</c> when the pool has a provider) with pool
    /// count 1. Returns <see cref="NetmemRef.Null"/> when the arena or provider is exhausted.
    /// In owned mode the caller MUST be the pool's consumer (its NAPI poll loop).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public NetmemRef AllocNetmem()
    {
        if (_owned)
        {
            int n = _own->Count;
            if (n != 0)
            {
                nuint v = _cache[n - 1];
                _own->Count = n - 1;

                // The whole word, pool id unchanged: the put's 8-byte read of it then forwards
                // from this store instead of stalling on a narrower one.
                ((NetmemDescHeader*)(v & ~NetmemRef.NetIovTag))->PoolState = NetmemDescHeader.MakePoolState(_id, NetmemState.InFlight);
                _cs[(int)Stat.AllocFast]++;
                return new NetmemRef(v);
            }

            return AllocRefillOrSlow();
        }

        return AllocShared();
    }

    /// <summary>
    /// Allocates a page. Throws when the pool serves <c>net_iov</c>s: page-only callers must not
    /// receive unreadable memory.
    /// </summary>
    public NetmemRef AllocPage()
    {
        if (_mp is not null)
        {
            throw new InvalidOperationException($"{this} serves net_iovs from '{_mp.Describe()}'; AllocPage needs a pool of system pages. Use AllocNetmem.");
        }

        return AllocNetmem();
    }

    /// <summary>
    /// Fills <paramref name="dest"/> (a driver's descriptor ring refill) and returns how many it
    /// got; fewer only when memory is exhausted.
    /// </summary>
    public int AllocBulk(Span<NetmemRef> dest)
    {
        for (int i = 0; i < dest.Length; i++)
        {
            NetmemRef r = AllocNetmem();
            if (r.IsNull)
            {
                return i;
            }

            dest[i] = r;
        }

        return dest.Length;
    }

    /// <summary>Cache empty: refill from the ring, else fall into the slow path. Consumer only.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private NetmemRef AllocRefillOrSlow()
    {
        ThrowIfDestroyed();
        int got = RefillFromRing(_cache, RefillBatch, _cs);
        if (got != 0)
        {
            _own->Count = got - 1;
            _cs[(int)Stat.AllocRefill]++;
            return TakeFromCache(_cache[got - 1]);
        }

        _cs[(int)Stat.AllocEmpty]++;
        return AllocSlow(_cache, RefillBatch, ref _own->Count, _cs);
    }

    /// <summary>
    /// Moves up to <paramref name="max"/> refs from the ring into <paramref name="slots"/>,
    /// waiving (releasing) pages from another NUMA node. Returns how many it kept.
    /// </summary>
    private int RefillFromRing(nuint* slots, int max, ulong* block)
    {
        int got = _ring.DequeueBurst(new Span<nuint>(slots, max));

        // Handing each of these out writes its descriptor, whose line the returner's claim left
        // on the returner's CPU: fetch them for writing together now rather than one miss per
        // allocation.
        TouchForWrite(new ReadOnlySpan<NetmemRef>(slots, got));
        if (_nid < 0 || got == 0)
        {
            return got;
        }

        int kept = 0;
        for (int i = 0; i < got; i++)
        {
            nuint v = slots[i];
            if ((v & NetmemRef.NetIovTag) != 0 || ((PageDesc*)v)->Nid == _nid)
            {
                slots[kept++] = v;
            }
            else
            {
                AddStat(block, Stat.AllocWaive);
                ReleaseNetmem(new NetmemRef(v));
            }
        }

        return kept;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private NetmemRef TakeFromCache(nuint v)
    {
        ((NetmemDescHeader*)(v & ~NetmemRef.NetIovTag))->PoolState = NetmemDescHeader.MakePoolState(_id, NetmemState.InFlight);
        return new NetmemRef(v);
    }

    /// <summary>
    /// The slow path: takes a bulk from the provider or the arena into <paramref name="slots"/>
    /// (count in <paramref name="count"/>) and hands out one. <paramref name="block"/> is the
    /// consumer's counter block, or null to count atomically on the CPU's block.
    /// </summary>
    private NetmemRef AllocSlow(nuint* slots, int max, ref int count, ulong* block)
    {
        Span<NetmemRef> dest = new(slots, _order == 0 ? max : 1);
        int got;
        if (MemoryProviderToggle.IsEnabled && _mp is not null)
        {
            got = _mp.AllocNetmems(this, dest);
        }
        else
        {
            got = _arena.AllocBulk(_order, dest);
        }

        if (got == 0)
        {
            return NetmemRef.Null;
        }

        bool trace = NetmemEventSource.Log.NetmemOn();
        ulong hold = trace ? _stats.Snapshot().HoldCount : 0;
        for (int i = 0; i < got; i++)
        {
            SetPpInfo(dest[i]);
            if (trace)
            {
                TraceHold(dest[i], ++hold);
            }
        }

        AddStat(block, Stat.Hold, (ulong)got);
        AddStat(block, _order == 0 ? Stat.AllocSlow : Stat.AllocSlowHighOrder);
        count = got - 1;
        return TakeFromCache(slots[got - 1]);
    }

    private void TraceHold(NetmemRef r, ulong hold) =>
        NetmemEventSource.Log.PagePoolStateHold(_id, r.Value, Pfn(r), hold);

    /// <summary>The page frame number of a page, or the DMA page number of a <c>net_iov</c>.</summary>
    private static ulong Pfn(NetmemRef r) =>
        r.IsNetIov ? r.Header->DmaAddr >> NetmemDesc.PageShift : (ulong)((PageDesc*)r.Header)->Data >> NetmemDesc.PageShift;

    /// <summary>Counts on the consumer block without atomics when given one, else atomically on the CPU's block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void AddStat(ulong* block, Stat stat, ulong value = 1)
    {
        if (block is not null)
        {
            block[(int)stat] += value;
        }
        else
        {
            _stats.AddAtomic(stat, value);
        }
    }

    private void ThrowIfDestroyed()
    {
        if (Volatile.Read(ref _destroyState) != 0)
        {
            ThrowDestroyed();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDestroyed() => throw new ObjectDisposedException(ToString(), $"{this} has been destroyed; it hands out nothing more.");
}
