using Netmem.Net;

namespace Netmem.Providers;

/// <summary>
/// A memory provider: the source a page pool's slow path draws from instead of the page arena,
/// installed on an rx queue and taken by pools created for that queue with
/// <see cref="PagePoolFlags.AllowUnreadableNetmem"/>.
/// </summary>
/// <remarks>
/// The pool does all per-netmem bookkeeping (pool id, state, hold and release counts); a provider
/// only hands out and takes back raw netmems. Calls arrive on the pool's consumer for
/// <see cref="AllocNetmems"/> and from any thread for <see cref="ReleaseNetmem"/>.
/// </remarks>
public interface IMemoryProvider
{
    /// <summary>Checks the pool's parameters and takes what the provider needs. Throws <see cref="NetmemException"/> to refuse.</summary>
    void Init(PagePool pool);

    /// <summary>Fills <paramref name="dest"/> with free netmems; returns how many (0 when exhausted).</summary>
    int AllocNetmems(PagePool pool, Span<NetmemRef> dest);

    /// <summary>
    /// Takes back a netmem the pool no longer wants. Returns true when the page arena should take
    /// it (a page the provider merely passed through); false when the provider kept it, as it
    /// always does for a <c>net_iov</c>.
    /// </summary>
    bool ReleaseNetmem(PagePool pool, NetmemRef netmem);

    /// <summary>The pool is gone: drop what <see cref="Init"/> took.</summary>
    void Destroy(PagePool pool);

    /// <summary>A one-line description for introspection, e.g. "dmabuf binding 3".</summary>
    string Describe();

    /// <summary>The queue's device is going away or the queue is being unbound: forget the queue.</summary>
    void Uninstall(RxQueue queue);
}
