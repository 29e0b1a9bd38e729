#pragma warning disable CS1591 // Undocumented public members here are left to the devmem TX change; remove once they are documented.
using System.Diagnostics.Tracing;
using Netmem.Devmem;
using Netmem.Diagnostics;

namespace Netmem.Net;

/// <summary>
/// A dmabuf bound to rx queues (<see cref="NetDevice.BindDmabuf"/>) or to a device for transmit
/// (<see cref="NetDevice.BindDmabufTx"/>): the owner of the binding, as the netlink socket that
/// asked for <c>bind-rx</c> or <c>bind-tx</c> is in the kernel. Disposing it unbinds
/// (<see cref="DmabufBinding.Unbind"/>: the id stops resolving for sends, each bound queue
/// restarts on system pages) and drops the creator's reference; the binding is freed once the
/// pools that hold its <c>net_iov</c>s have got them all back and its sends in flight have completed.
/// </summary>
/// <remarks>
/// <para>A handle that is dropped without <see cref="Dispose"/> still unbinds when the garbage
/// collector finalizes it, as the kernel unbinds when the owning socket closes at process exit.
/// The finalizer does not unbind itself: restarting a queue takes the configuration lock and
/// waits for poll threads to park, which must never block the finalizer thread (a thread
/// holding that lock may be waiting for finalizers). It hands the unbind to the thread pool,
/// and that work item catches, counts (<see cref="OrphanedReleaseFailures"/>) and traces
/// (<see cref="NetmemEventSource.OrphanedBindingReleaseFailed"/>) whatever goes wrong.</para>
/// <para>Relying on the finalizer leaves the queues bound for an unknown time; dispose the handle.</para>
/// </remarks>
public sealed class DmabufBindingHandle : IDisposable
{
    /// <summary>Unbinds handed off by finalizers and not finished yet.</summary>
    private static int s_orphanedPending;

    /// <summary>Unbinds handed off by finalizers that failed.</summary>
    private static long s_orphanedFailures;

    /// <summary>1 once <see cref="Dispose"/> or the finalizer has claimed the release.</summary>
    private int _released;

    internal DmabufBindingHandle(NetDevice device, DmabufBinding binding, DevmemProvider? provider)
    {
        Device = device;
        Binding = binding;
        Provider = provider;
    }

    /// <summary>Unbinds from the finalizer thread's side: see the remarks on the type.</summary>
    ~DmabufBindingHandle()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        // Only the binding travels to the work item: the handle itself stays unreachable.
        Interlocked.Increment(ref s_orphanedPending);
        ThreadPool.UnsafeQueueUserWorkItem(static b => ReleaseOrphaned(b), Binding, preferLocal: false);
    }

    /// <summary>The binding id (netlink's dmabuf id), as reported in receive records and introspection.</summary>
    public int BindingId => Binding.Id;

    /// <summary>The device the region is bound to.</summary>
    public NetDevice Device { get; }

    /// <summary>The binding this handle owns.</summary>
    public DmabufBinding Binding { get; }

    /// <summary>The provider installed on the bound queues; null for a TX binding.</summary>
    public DevmemProvider? Provider { get; }

    /// <summary>Whether the binding is for receive or transmit.</summary>
    public DmabufDirection Direction => Binding.Direction;

    /// <summary>Unbinds that ran because a handle was collected without being disposed, and failed.</summary>
    public static long OrphanedReleaseFailures => Interlocked.Read(ref s_orphanedFailures);

    /// <summary>Unbinds every queue and drops the creator's reference. Later calls do nothing.</summary>
    /// <exception cref="NetmemException">A queue restart failed; the binding is unbound from every queue all the same.</exception>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
        {
            return;
        }

        GC.SuppressFinalize(this);
        Release(Binding);
    }

    public override string ToString() => $"{Binding} on {Device}";

    /// <summary>
    /// Waits (bounded) until every unbind handed off by a finalizer has finished. True when none
    /// is pending. For tests, after <see cref="GC.WaitForPendingFinalizers"/>.
    /// </summary>
    internal static bool WaitForOrphanedReleases(TimeSpan timeout) =>
        SpinWait.SpinUntil(() => Volatile.Read(ref s_orphanedPending) == 0, timeout);

    private static void Release(DmabufBinding binding)
    {
        try
        {
            binding.Unbind();
        }
        finally
        {
            binding.Put();
        }
    }

    /// <summary>Runs on a thread-pool thread; lets nothing escape.</summary>
    private static void ReleaseOrphaned(DmabufBinding binding)
    {
        try
        {
            Release(binding);
        }
        catch (Exception e)
        {
            Interlocked.Increment(ref s_orphanedFailures);
            if (NetmemEventSource.Log.IsEnabled(EventLevel.Error, NetmemEventSource.Keywords.Lifecycle))
            {
                NetmemEventSource.Log.OrphanedBindingReleaseFailed(binding.Id, e.Message);
            }
        }
        finally
        {
            Interlocked.Decrement(ref s_orphanedPending);
        }
    }
}
