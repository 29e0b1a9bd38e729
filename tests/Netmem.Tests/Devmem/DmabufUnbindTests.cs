using System.Runtime.CompilerServices;
using Netmem.Devmem;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Netmem.Tests.Drivers;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Devmem;

/// <summary>
/// Unbinding does what the kernel's <c>net_devmem_unbind_dmabuf</c> does: closes the provider on
/// every bound queue and restarts the queue, so afterwards no payload lands in the binding's
/// memory, the queues report no provider, XDP may attach, and every net_iov comes back. The owner
/// handle does it even when the application never disposes it, once the GC collects it.
/// </summary>
public sealed class DmabufUnbindTests : IDisposable
{
    private const ushort Port = 7700;
    private readonly PageArena _arena = new(16 << 20);
    private readonly DmabufRegion _region;
    private readonly SimNic _nic;
    private readonly PoolTracker _pools = new();
    private readonly byte[] _frame = new byte[9100];
    private ulong _seq;

    public DmabufUnbindTests()
    {
        _region = DmabufRegion.CreateMemfd("unbind", 1 << 20);
        _nic = new SimNic("unbind", new SimNicOptions { RxQueues = 2, RxRingSize = 32, PoolSize = 64, Arena = _arena });
        _pools.Capture(_nic);
    }

    public void Dispose()
    {
        _pools.Capture(_nic);
        _nic.Dispose();
        _pools.AssertAllReturned();
        Assert.Equal(_arena.TotalPages(0), _arena.FreePages(0));
        _region.Dispose();
        _arena.Dispose();
    }

    /// <summary>Injects one datagram per queue and returns the records received, without handing tokens back.</summary>
    private DmabufCmsg[] InjectAndReceive(DevmemSocket socket)
    {
        for (int q = 0; q < 2; q++)
        {
            InjectBounded(_nic, q, _frame.AsSpan(0, UdpFrame(_frame, _seq++, 2000, Port)));
        }

        WaitIdle(_nic);
        var cmsgs = new DmabufCmsg[8];
        int n = socket.Receive(cmsgs, new byte[16384], out _);
        Assert.Equal(2, n);
        return cmsgs[..n];
    }

    [Fact]
    public void Unbind_restarts_every_bound_queue_so_payloads_land_in_readable_pages_again()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port));
        DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [0, 1]);
        _pools.Capture(_nic);
        DmabufCmsg[] before = InjectAndReceive(socket);
        Assert.All(before, c => Assert.Equal(DevmemCmsgType.Dmabuf, c.Type));

        h.Binding.Unbind();
        _pools.Capture(_nic);

        Assert.All(_nic.Device.RxQueues, q => Assert.Null(q.MemoryProvider));
        Assert.False(_nic.Device.HasBoundQueue);
        Assert.Empty(h.Binding.BoundQueues);
        Assert.All(new[] { 0, 1 }, q => Assert.Null(NetdevIntrospection.DmabufIdOf(_nic.QueueMemory(q)!.PayloadPool)));
        DmabufCmsg[] after = InjectAndReceive(socket);
        Assert.All(after, c => Assert.Equal(DevmemCmsgType.Linear, c.Type));

        // The user's tokens from before stay valid and hand the last net_iovs back.
        Assert.Equal(2, socket.DontNeed([before[0].FragToken, before[1].FragToken]));
        Assert.Equal(0, h.Binding.OutstandingNetIovs);
        Assert.Equal(h.Binding.Size, h.Binding.Avail);
        Assert.Equal(0, _nic.QueueCounters(0).Drops + _nic.QueueCounters(1).Drops);

        h.Dispose();
        Assert.True(h.Binding.IsFreed);
        Assert.Equal(0, _nic.Dma.SegmentCount);
    }

    [Fact]
    public void After_unbind_xdp_may_attach_because_no_queue_takes_the_binding_any_more()
    {
        DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [1]);
        Assert.Throws<NetmemException>(() => _nic.Device.AttachXdp());

        h.Binding.Unbind();
        _pools.Capture(_nic);
        _nic.Device.AttachXdp();

        Assert.Equal(1, _nic.Device.XdpProgramCount);
        Assert.All(_nic.Device.PagePools, p => Assert.Null(NetdevIntrospection.DmabufIdOf(p)));
        _nic.Device.DetachXdp();
        h.Dispose();
        Assert.True(h.Binding.IsFreed);
    }

    [Fact]
    public void Unbinding_twice_or_disposing_after_unbind_does_nothing_more()
    {
        DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [0, 1]);
        _pools.Capture(_nic);
        int refsBound = h.Binding.RefCount;

        h.Binding.Unbind();
        h.Binding.Unbind();
        _pools.Capture(_nic);

        // The two queue references are gone; the creator's stays until the handle is disposed.
        Assert.Equal(1, h.Binding.RefCount);
        Assert.True(refsBound >= 3);
        h.Dispose();
        h.Dispose();
        Assert.True(h.Binding.IsFreed);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private (DmabufBinding Binding, WeakReference Handle) BindAndDropTheHandle()
    {
        DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [1]);
        _pools.Capture(_nic);
        return (h.Binding, new WeakReference(h));
    }

    [Fact]
    public void A_handle_collected_without_dispose_unbinds_its_queues_and_frees_the_binding()
    {
        long failuresBefore = DmabufBindingHandle.OrphanedReleaseFailures;
        (DmabufBinding binding, WeakReference handle) = BindAndDropTheHandle();
        Assert.Same(binding, ((DevmemProvider)_nic.Device.RxQueues[1].MemoryProvider!).Binding);

        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.True(DmabufBindingHandle.WaitForOrphanedReleases(WaitLimit), "the orphaned unbind did not finish");
        _pools.Capture(_nic);

        Assert.False(handle.IsAlive);
        Assert.Null(_nic.Device.RxQueues[1].MemoryProvider);
        Assert.False(_nic.Device.HasBoundQueue);
        Assert.Null(NetdevIntrospection.DmabufIdOf(_nic.QueueMemory(1)!.PayloadPool));
        Assert.Empty(binding.BoundQueues);
        Assert.True(binding.IsFreed);
        Assert.Equal(0, _nic.Dma.SegmentCount);
        Assert.Equal(failuresBefore, DmabufBindingHandle.OrphanedReleaseFailures);
    }
}
