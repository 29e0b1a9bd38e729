#pragma warning disable CS1591 // Undocumented public members here are left to the devmem TX change; remove once they are documented.
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.CompilerServices;
using Netmem.Diagnostics;
using Netmem.Genalloc;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Devmem;

/// <summary>
/// A region bound to a device (the kernel's <c>net_devmem_dmabuf_binding</c>): the region mapped
/// into a device, a <see cref="GenPool"/> with one chunk per scatter-gather segment from which
/// the <c>net_iov</c>s are allocated, a process-unique id, and the rx queues it is bound to. A
/// binding for transmit (<see cref="DmabufDirection.Tx"/>, made by
/// <see cref="Net.NetDevice.BindDmabufTx"/>) also has the kernel's <c>tx_vec</c>: the
/// <c>net_iov</c> of each 4 KiB of the region, by region offset, so a send can name region
/// offsets.
/// </summary>
/// <remarks>
/// <para>Reference counted. <see cref="Create(DmabufRegion, DmaDevice, int)"/> returns it with one reference (the creator's,
/// as the netlink socket holds one in the kernel); each page pool that takes a
/// <see cref="DevmemProvider"/> on it holds one from init to destroy, and each bound queue holds
/// one. The last <see cref="Put"/> frees it: the chunk owners' descriptors, the gen pool and the
/// device mapping.</para>
/// <para>A binding freed while <c>net_iov</c>s are still out is a bug in whoever holds them, and
/// it is never silent: the freeing <see cref="Put"/> raises the <c>DmabufBindingDestroyed</c>
/// event with the outstanding count and throws <see cref="NetmemException"/> (EBUSY). The binding
/// then lingers, mapped and with its descriptors intact (freeing them would leave the holders'
/// handles pointing at freed memory), and finishes freeing itself when the last one comes back.</para>
/// <para>Gen pool chunk addresses are the segments' DMA addresses, as in the kernel, so a
/// <c>net_iov</c>'s DMA address is also its address in the pool and the owner found by
/// <see cref="GenPool.Alloc(ulong, out object?)"/> locates its descriptor in O(1).</para>
/// </remarks>
[SuppressMessage("Design", "CA1001:Types that own disposable fields should be disposable", Justification = "Reference counted: the last Put disposes the gen pool, as the kernel's binding put does.")]
public sealed unsafe class DmabufBinding
{
    private const int Live = 0;
    private const int Lingering = 1;
    private const int Freed = 2;

    /// <summary>Bindings by id (the kernel's <c>net_devmem_dmabuf_bindings</c> xarray); a null value reserves an id during creation.</summary>
    private static readonly ConcurrentDictionary<int, DmabufBinding?> s_bindings = new();

    /// <summary>Serialises id allocation so the cyclic cursor moves one step per binding.</summary>
    private static readonly Lock s_idLock = new();

    /// <summary>The next id to try, cycling through 1..int.MaxValue (as <c>xa_alloc_cyclic</c>).</summary>
    private static int s_nextId = 1;

    /// <summary>The net_iov allocator: one chunk per segment, 4 KiB granules.</summary>
    private readonly GenPool _pool;

    /// <summary>The chunk owners, one per segment, in region order.</summary>
    private readonly NetIovArea[] _areas;

    /// <summary>The rx queues bound to this binding; guarded by itself.</summary>
    private readonly List<RxQueue> _queues = [];

    private int _refs = 1;

    /// <summary><see cref="Live"/>, <see cref="Lingering"/> (last reference gone, net_iovs still out) or <see cref="Freed"/>.</summary>
    private int _state;

    /// <summary>
    /// For a TX binding, the descriptor of each 4 KiB of the region by region page index (the
    /// kernel's <c>tx_vec</c>); null for rx.
    /// </summary>
    private readonly nint[]? _txVec;

    /// <summary>Set by <see cref="Unbind"/>: a send can no longer look the binding up (the kernel erases the id first).</summary>
    private volatile bool _unbound;

    private DmabufBinding(int id, DmabufRegion region, DmaMapping mapping, DmabufDirection direction, Net.NetDevice? netDevice)
    {
        Id = id;
        Region = region;
        Mapping = mapping;
        Direction = direction;
        NetDevice = netDevice;
        string idText = id.ToString(CultureInfo.InvariantCulture);
        _pool = new GenPool(NetmemDesc.PageShift, GenPoolAlgorithm.FirstFit, "dmabuf binding " + idText);
        _areas = new NetIovArea[mapping.Segments.Count];
        try
        {
            for (int i = 0; i < _areas.Length; i++)
            {
                DmaSegment seg = mapping.Segments[i];
                var area = new NetIovArea(this, seg);
                _areas[i] = area;
                _pool.AddChunk(seg.DmaAddress, (ulong)seg.Length, area);
            }

            if (direction == DmabufDirection.Tx)
            {
                _txVec = new nint[region.Size >> NetmemDesc.PageShift];
                foreach (NetIovArea area in _areas)
                {
                    long first = area.BaseRegionOffset >> NetmemDesc.PageShift;
                    for (int i = 0; i < area.Count; i++)
                    {
                        _txVec[first + i] = (nint)area[i];
                    }
                }
            }
        }
        catch
        {
            // Nothing was handed out yet: the descriptors can go at once.
            foreach (NetIovArea? area in _areas)
            {
                area?.Free();
            }

            throw;
        }
    }

    /// <summary>Process-unique id, allocated cyclically from 1; reported as the queue's and pool's dmabuf id.</summary>
    public int Id { get; }

    /// <summary>The bound memory.</summary>
    public DmabufRegion Region { get; }

    /// <summary>Which way the device moves data through this binding: <see cref="DmabufDirection.Rx"/> (bind-rx) or <see cref="DmabufDirection.Tx"/> (bind-tx).</summary>
    public DmabufDirection Direction { get; }

    /// <summary>
    /// The net device the binding was made for (the kernel's <c>binding-&gt;dev</c>), or null for
    /// a binding made directly with <see cref="Create(DmabufRegion, DmaDevice, int)"/>. A send
    /// through a TX binding must be routed through this device.
    /// </summary>
    public Net.NetDevice? NetDevice { get; }

    /// <summary>True once <see cref="Unbind"/> ran: the id no longer resolves for a send.</summary>
    public bool IsUnbound => _unbound;

    /// <summary>The region's mapping into <see cref="Device"/>.</summary>
    public DmaMapping Mapping { get; }

    /// <summary>The device the region is mapped into.</summary>
    public DmaDevice Device => Mapping.Device;

    /// <summary>The scatter-gather list the gen pool chunks were made from.</summary>
    public IReadOnlyList<DmaSegment> Segments => Mapping.Segments;

    /// <summary>Bytes of <c>net_iov</c> memory (the gen pool's size).</summary>
    public long Size => (long)_pool.Size;

    /// <summary>Bytes not handed out (the gen pool's avail).</summary>
    public long Avail => (long)_pool.Avail;

    /// <summary><c>net_iov</c>s handed out and not yet freed back.</summary>
    public long OutstandingNetIovs => (Size - Avail) >> NetmemDesc.PageShift;

    /// <summary>Current reference count; 0 once the last reference was put.</summary>
    public int RefCount => Volatile.Read(ref _refs);

    /// <summary>True once the binding has freed its memory (every net_iov back after the last put).</summary>
    public bool IsFreed => Volatile.Read(ref _state) == Freed;

    /// <summary>A snapshot of the rx queues this binding is bound to.</summary>
    public IReadOnlyList<RxQueue> BoundQueues
    {
        get
        {
            lock (_queues)
            {
                return [.. _queues];
            }
        }
    }

    /// <summary>The chunk allocator, for tests and introspection.</summary>
    internal GenPool ChunkPool => _pool;

    /// <summary>
    /// Maps <paramref name="region"/> into <paramref name="device"/> and builds a binding over it
    /// with one reference, owned by the caller (drop it with <see cref="Put"/>).
    /// </summary>
    /// <param name="region">The memory to bind.</param>
    /// <param name="device">The device that will write into it.</param>
    /// <param name="maxSegmentSize">The device's segment limit, 0 for none (see <see cref="DmaDevice.Map"/>).</param>
    public static DmabufBinding Create(DmabufRegion region, DmaDevice device, int maxSegmentSize = 0) =>
        Create(region, device, maxSegmentSize, netDevice: null, DmabufDirection.Rx);

    /// <summary>As <see cref="Create(DmabufRegion, DmaDevice, int)"/>, for <paramref name="netDevice"/> (named in the created event) and <paramref name="direction"/>.</summary>
    internal static DmabufBinding Create(DmabufRegion region, DmaDevice device, int maxSegmentSize, Net.NetDevice? netDevice, DmabufDirection direction)
    {
        ArgumentNullException.ThrowIfNull(region);
        ArgumentNullException.ThrowIfNull(device);
        DmaMapping mapping = device.Map(region, maxSegmentSize);
        int id = 0;
        try
        {
            id = ReserveId();
            var binding = new DmabufBinding(id, region, mapping, direction, netDevice);
            s_bindings[id] = binding;
            if (NetmemEventSource.Log.LifecycleOn())
            {
                NetmemEventSource.Log.DmabufBindingCreated(id, binding.Size, binding._areas.Length, netDevice?.Ifindex ?? 0);
            }

            return binding;
        }
        catch
        {
            if (id != 0)
            {
                s_bindings.TryRemove(id, out _);
            }

            device.Unmap(mapping);
            throw;
        }
    }

    /// <summary>The live (or lingering) binding with <paramref name="id"/>, or null.</summary>
    public static DmabufBinding? FromId(int id) => s_bindings.TryGetValue(id, out DmabufBinding? b) ? b : null;

    /// <summary>
    /// The binding a <c>net_iov</c> belongs to, from its descriptor alone, or null when that
    /// binding is gone. Throws for a page or a null handle.
    /// </summary>
    public static DmabufBinding? FromNetIov(NetmemRef niov) => FromId(niov.NetIovDescriptor->BindingId);

    /// <summary>Takes a reference.</summary>
    /// <exception cref="ObjectDisposedException">The last reference was already put.</exception>
    public void Get()
    {
        if (!TryGet())
        {
            throw new ObjectDisposedException(ToString(), $"{this}: cannot take a reference, the last one was already put.");
        }
    }

    /// <summary>
    /// Drops a reference; the last one frees the binding: unmaps it and destroys its gen pool.
    /// </summary>
    /// <exception cref="NetmemException">
    /// EBUSY from the put that freed the binding while <c>net_iov</c>s were still out; the binding
    /// lingers until they come back (see the remarks on the type).
    /// </exception>
    /// <exception cref="InvalidOperationException">More puts than references.</exception>
    public void Put()
    {
        int r = Interlocked.Decrement(ref _refs);
        if (r > 0)
        {
            return;
        }

        if (r < 0)
        {
            Interlocked.Increment(ref _refs);
            throw new InvalidOperationException($"{this}: put without a reference (the count was already zero).");
        }

        Release();
    }

    /// <summary>
    /// Unbinds from every bound queue, as the kernel's <c>net_devmem_unbind_dmabuf</c> does: on
    /// each queue that still has this binding's provider, closes the provider and restarts the
    /// queue (<see cref="Net.NetDevice.CloseMemoryProvider"/>), so the queue's new payload pool takes
    /// system pages and the old one, which handed out this binding's <c>net_iov</c>s, is
    /// destroyed; then forgets the queue and drops the reference taken for it. Afterwards no
    /// payload lands in this binding's memory, the queues report no provider, and the
    /// <c>net_iov</c>s come back as their holders return them. The creator's reference stays;
    /// drop it with <see cref="Put"/>.
    /// </summary>
    /// <remarks>
    /// Runs under the device configuration lock. A queue without a device (a stand-alone
    /// <see cref="RxQueue"/>) has its provider cleared with nothing to restart. A queue whose
    /// restart fails still loses the provider and is still forgotten, as the kernel warns and
    /// goes on; every queue is unbound before the first such error is rethrown.
    /// </remarks>
    /// <exception cref="NetmemException">A queue restart failed (see <see cref="Net.NetDevice.CloseMemoryProvider"/>).</exception>
    public void Unbind()
    {
        // First, as the kernel erases the id before anything else: no new send finds the binding.
        _unbound = true;
        Exception? first = null;
        lock (Net.NetDevice.Rtnl)
        {
            foreach (RxQueue q in BoundQueues)
            {
                try
                {
                    if (q.MemoryProvider is DevmemProvider p && ReferenceEquals(p.Binding, this))
                    {
                        if (q.Device is { } device)
                        {
                            device.CloseMemoryProvider(q.Index, p);
                        }
                        else
                        {
                            q.MemoryProvider = null;
                        }
                    }
                }
                catch (Exception e)
                {
                    first ??= e;
                }
                finally
                {
                    DetachQueue(q);
                }
            }
        }

        if (first is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
        }
    }

    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"dmabuf binding {Id} ({Size} bytes, {_areas.Length} chunks)");

    /// <summary>
    /// The live TX binding with <paramref name="id"/>, with a reference taken for the caller (the
    /// kernel's <c>net_devmem_lookup_dmabuf</c> and its <c>tx_vec</c> check); null when there is
    /// none: no binding has the id, it was unbound, its last reference is gone, or it is an rx binding.
    /// </summary>
    internal static DmabufBinding? LookupTx(uint id)
    {
        if (id == 0 || id > int.MaxValue || !s_bindings.TryGetValue((int)id, out DmabufBinding? b) || b is null)
        {
            return null;
        }

        if (b._txVec is null || b._unbound || !b.TryGet())
        {
            return null;
        }

        if (b._unbound)
        {
            // Unbound between the check and the reference: the send must not see it.
            b.Put();
            return null;
        }

        return b;
    }

    /// <summary>
    /// The descriptor of the TX binding's <c>net_iov</c> that holds region offset
    /// <paramref name="regionOffset"/> (the kernel's <c>net_devmem_get_niov_at</c>). The caller
    /// MUST check the offset is inside the region and hold a reference.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal NetIovDesc* TxNetIovAt(ulong regionOffset) => (NetIovDesc*)_txVec![regionOffset >> NetmemDesc.PageShift];

    /// <summary>Takes a reference unless the count already reached zero.</summary>
    internal bool TryGet()
    {
        int r = Volatile.Read(ref _refs);
        while (r > 0)
        {
            int seen = Interlocked.CompareExchange(ref _refs, r + 1, r);
            if (seen == r)
            {
                return true;
            }

            r = seen;
        }

        return false;
    }

    /// <summary>Records <paramref name="queue"/> as bound and takes a reference for it. Used by the net device code.</summary>
    /// <exception cref="NetmemException">EEXIST: the queue is already bound to this binding.</exception>
    internal void AttachQueue(RxQueue queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        lock (_queues)
        {
            if (_queues.Contains(queue))
            {
                throw new NetmemException(Errno.EEXIST, $"{queue} is already bound to {this}");
            }

            Get();
            _queues.Add(queue);
        }

        if (NetmemEventSource.Log.LifecycleOn())
        {
            NetmemEventSource.Log.QueueBound(queue.Device?.Ifindex ?? 0, queue.Index, Id);
        }
    }

    /// <summary>Forgets <paramref name="queue"/> and drops its reference; false when it was not bound.</summary>
    internal bool DetachQueue(RxQueue queue)
    {
        lock (_queues)
        {
            if (!_queues.Remove(queue))
            {
                return false;
            }
        }

        TraceQueueUnbound(queue);
        Put();
        return true;
    }

    /// <summary>
    /// Takes one free <c>net_iov</c> from the gen pool (the kernel's <c>net_devmem_alloc_dmabuf</c>),
    /// its pool fields cleared; null when the binding is exhausted. Any thread.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal NetmemRef AllocNetIov()
    {
        ulong addr = _pool.Alloc(NetmemDesc.BasePageSize, out object? owner);
        if (addr == 0)
        {
            return NetmemRef.Null;
        }

        // Every chunk of this pool is owned by a NetIovArea (see the constructor).
        NetIovDesc* d = Unsafe.As<NetIovArea>(owner!).FromDmaAddress(addr);
        d->Common.PoolId = 0;
        d->Common.PpRefCount = 0;
        d->Common.State = (int)NetmemState.Free;
        return NetmemRef.FromNetIov(d);
    }

    /// <summary>
    /// Gives a <c>net_iov</c> back to the gen pool (the kernel's <c>net_devmem_free_dmabuf</c>).
    /// Any thread. A lingering binding finishes freeing itself when this returns its last one.
    /// </summary>
    /// <exception cref="InvalidOperationException">The <c>net_iov</c> is of another binding, or a page.</exception>
    /// <exception cref="NetmemException">EINVAL: it is already free (a double free).</exception>
    internal void FreeNetIov(NetmemRef niov)
    {
        NetIovDesc* d = niov.NetIovDescriptor;
        if (d->BindingId != Id)
        {
            ThrowForeign(niov);
        }

        _pool.Free(d->Common.DmaAddr, NetmemDesc.BasePageSize);
        if (Volatile.Read(ref _state) == Lingering && _pool.Avail == _pool.Size)
        {
            FinishFree();
        }
    }

    /// <summary>Sets the id cursor, for tests of the cyclic allocation.</summary>
    internal static void SetNextIdForTests(int next)
    {
        lock (s_idLock)
        {
            s_nextId = next;
        }
    }

    private static int ReserveId()
    {
        lock (s_idLock)
        {
            // 2^31 - 1 live bindings would be needed for this to spin forever.
            while (true)
            {
                int id = s_nextId;
                s_nextId = id == int.MaxValue ? 1 : id + 1;
                if (s_bindings.TryAdd(id, null))
                {
                    return id;
                }
            }
        }
    }

    /// <summary>The last reference is gone: free now, or linger loudly if net_iovs are out.</summary>
    private void Release()
    {
        // Lingering first, then look: a net_iov freed concurrently either sees the state and
        // finishes the free itself, or is counted in the avail read below.
        Volatile.Write(ref _state, Lingering);
        ulong size = _pool.Size;
        ulong avail = _pool.Avail;
        if (size == avail)
        {
            FinishFree();
            return;
        }

        long outstanding = (long)((size - avail) >> NetmemDesc.PageShift);
        if (NetmemEventSource.Log.LifecycleOn())
        {
            NetmemEventSource.Log.DmabufBindingDestroyed(Id, (long)size, (long)avail, outstanding);
        }

        throw new NetmemException(Errno.EBUSY, string.Create(CultureInfo.InvariantCulture,
            $"dmabuf binding {Id} lost its last reference with {outstanding} net_iovs still out (gen pool size {size}, avail {avail}); it stays mapped until they are returned"));
    }

    /// <summary>Frees everything; exactly one caller wins.</summary>
    private void FinishFree()
    {
        if (Interlocked.CompareExchange(ref _state, Freed, Lingering) != Lingering)
        {
            return;
        }

        ulong size = _pool.Size;
        s_bindings.TryRemove(Id, out _);
        _pool.Dispose();
        foreach (NetIovArea area in _areas)
        {
            area.Free();
        }

        Device.Unmap(Mapping);
        if (NetmemEventSource.Log.LifecycleOn())
        {
            NetmemEventSource.Log.DmabufBindingDestroyed(Id, (long)size, (long)size, 0);
        }
    }

    private void TraceQueueUnbound(RxQueue queue)
    {
        if (NetmemEventSource.Log.LifecycleOn())
        {
            NetmemEventSource.Log.QueueUnbound(queue.Device?.Ifindex ?? 0, queue.Index, Id);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowForeign(NetmemRef niov) =>
        throw new InvalidOperationException($"{this}: {niov} belongs to dmabuf binding {niov.BindingId}, not to this one.");
}
