using System.Globalization;
using System.Runtime.CompilerServices;
using Netmem.Native;
using Netmem.Net;
using Netmem.Providers;

namespace Netmem.Devmem;

/// <summary>
/// The dmabuf devmem memory provider: serves a page pool <c>net_iov</c>s from a
/// <see cref="DmabufBinding"/> (the kernel's <c>mp_dmabuf_devmem_*</c>). Installed on an rx queue
/// and taken by the pools on that queue created with <see cref="PagePoolFlags.AllowUnreadableNetmem"/>.
/// </summary>
/// <remarks>
/// One provider may serve several pools on its queue in turn (a queue restart creates the new
/// pool before the old one is destroyed); each pool holds its own reference on the binding from
/// <see cref="Init"/> to <see cref="Destroy"/>, which keeps the binding and its mapping alive for
/// as long as the pool may hand out its memory. The pool does the per-netmem bookkeeping; this
/// class only moves <c>net_iov</c>s between the binding's gen pool and the pool.
/// </remarks>
public sealed class DevmemProvider : IMemoryProvider, IDmabufIdentified
{
    /// <summary>Creates a provider over <paramref name="binding"/>; a null binding is refused at <see cref="Init"/> (EINVAL).</summary>
    public DevmemProvider(DmabufBinding? binding) => Binding = binding;

    /// <summary>The binding whose memory this provider hands out.</summary>
    public DmabufBinding? Binding { get; }

    /// <summary>The binding id, as introspection reports it (0 without a binding).</summary>
    public int DmabufId => Binding?.Id ?? 0;

    /// <summary>
    /// Checks the pool's parameters, in the kernel's order, and takes a reference on the binding.
    /// </summary>
    /// <exception cref="NetmemException">
    /// EINVAL: no binding. EOPNOTSUPP: the pool does not map for DMA (the driver needs the pool
    /// to hand it DMA addresses), or it syncs for the device (not supported). E2BIG: order is not
    /// 0 (a <c>net_iov</c> is 4 KiB). ENODEV: the binding was already freed.
    /// </exception>
    public void Init(PagePool pool)
    {
        ArgumentNullException.ThrowIfNull(pool);
        PagePoolParams p = pool.Params;
        if (Binding is null)
        {
            throw new NetmemException(Errno.EINVAL, $"{pool}: the devmem provider on its queue has no dmabuf binding");
        }

        if ((p.Flags & PagePoolFlags.DmaMap) == 0)
        {
            throw new NetmemException(Errno.EOPNOTSUPP,
                $"{pool}: devmem needs PagePoolFlags.DmaMap so the pool hands the driver DMA addresses of {Binding}");
        }

        if ((p.Flags & PagePoolFlags.DmaSyncDev) != 0)
        {
            throw new NetmemException(Errno.EOPNOTSUPP, $"{pool}: devmem does not support PagePoolFlags.DmaSyncDev");
        }

        if (p.Order != 0)
        {
            throw new NetmemException(Errno.E2BIG,
                string.Create(CultureInfo.InvariantCulture, $"{pool}: devmem serves 4 KiB net_iovs only; order {p.Order} is not supported"));
        }

        if (!Binding.TryGet())
        {
            throw new NetmemException(Errno.ENODEV, $"{pool}: {Binding} was already released");
        }
    }

    /// <summary>Fills <paramref name="dest"/> with free <c>net_iov</c>s from the binding; returns how many (0 when it is exhausted).</summary>
    public int AllocNetmems(PagePool pool, Span<NetmemRef> dest)
    {
        DmabufBinding binding = Binding!;
        for (int i = 0; i < dest.Length; i++)
        {
            NetmemRef niov = binding.AllocNetIov();
            if (niov.IsNull)
            {
                return i;
            }

            dest[i] = niov;
        }

        return dest.Length;
    }

    /// <summary>
    /// Takes back a <c>net_iov</c> the pool released: clears its pool reference count and frees
    /// it to the binding's gen pool. Always returns false: the arena must never take a <c>net_iov</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// A page was released to this provider, or the <c>net_iov</c>'s pool reference count is not 1:
    /// a bug in the pool or a driver, raised rather than absorbed (the kernel warns and leaks it).
    /// </exception>
    public unsafe bool ReleaseNetmem(PagePool pool, NetmemRef netmem)
    {
        if (!netmem.IsNetIov)
        {
            ThrowNotNetIov(pool, netmem);
        }

        NetmemDescHeader* h = netmem.Header;
        if (Volatile.Read(ref h->PpRefCount) != 1)
        {
            ThrowBadRefCount(pool, netmem);
        }

        h->PpRefCount = 0;
        Binding!.FreeNetIov(netmem);
        return false;
    }

    /// <summary>The pool is gone: drop the reference <see cref="Init"/> took.</summary>
    public void Destroy(PagePool pool) => Binding?.Put();

    /// <summary>E.g. "dmabuf binding 3".</summary>
    public string Describe() =>
        Binding is null ? "dmabuf binding (none)" : "dmabuf binding " + Binding.Id.ToString(CultureInfo.InvariantCulture);

    /// <summary>Forgets <paramref name="queue"/> in the binding's list of bound queues.</summary>
    public void Uninstall(RxQueue queue)
    {
        ArgumentNullException.ThrowIfNull(queue);
        Binding?.DetachQueue(queue);
    }

    /// <summary>Names the provider and the binding it serves, for logs.</summary>
    public override string ToString() => "devmem provider (" + Describe() + ")";

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowNotNetIov(PagePool pool, NetmemRef netmem) =>
        throw new InvalidOperationException($"{pool} released {netmem} to {this}, which only takes net_iovs.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadRefCount(PagePool pool, NetmemRef netmem) =>
        throw new InvalidOperationException(
            $"{pool} released {netmem} to {this} with pool reference count {netmem.PoolRefCount}; a released net_iov must have exactly 1.");
}
