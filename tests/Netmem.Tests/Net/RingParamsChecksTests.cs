using Netmem.Devmem;
using Netmem.Drivers.SimNic;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Drivers;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Net;

/// <summary>
/// ethtool ring parameters against bound queues (the kernel's <c>ethnl_set_rings</c>): while a
/// queue has a memory provider, header-data split cannot be turned off and hds-thresh cannot be
/// made non-zero (EINVAL, the kernel's extack text), so a later restart of the bound queue keeps
/// its payloads in the binding. Nothing changes on a refusal; without a provider both setters work.
/// </summary>
public sealed class RingParamsChecksTests : IDisposable
{
    private const ushort Port = 7500;
    private readonly PageArena _arena = new(16 << 20);
    private readonly DmabufRegion _region;
    private readonly SimNic _nic;
    private readonly PoolTracker _pools = new();
    private readonly byte[] _frame = new byte[9100];

    public RingParamsChecksTests()
    {
        _region = DmabufRegion.CreateMemfd("rings", 1 << 20);
        _nic = new SimNic("rings", new SimNicOptions { RxQueues = 2, RxRingSize = 32, PoolSize = 64, Arena = _arena });
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

    /// <summary>Injects one datagram on queue 1, receives it and returns the record type of its payload.</summary>
    private DevmemCmsgType ReceiveOne(DevmemSocket socket, ulong seq)
    {
        InjectBounded(_nic, 1, _frame.AsSpan(0, UdpFrame(_frame, seq, 3000, Port)));
        WaitIdle(_nic);
        var cmsgs = new DmabufCmsg[8];
        byte[] linear = new byte[16384];
        int n = socket.Receive(cmsgs, linear, out _);
        Assert.Equal(1, n);
        if (cmsgs[0].Type == DevmemCmsgType.Dmabuf)
        {
            Assert.Equal(1, socket.DontNeed([cmsgs[0].FragToken]));
        }

        return cmsgs[0].Type;
    }

    [Fact]
    public void Disabling_tcp_data_split_while_a_queue_is_bound_fails_EINVAL_and_changes_nothing()
    {
        using DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [1]);

        NetmemException off = Assert.Throws<NetmemException>(() => _nic.Device.TcpDataSplit = TcpDataSplit.Disabled);
        NetmemException unknown = Assert.Throws<NetmemException>(() => _nic.Device.SetRingParams(tcpDataSplit: TcpDataSplit.Unknown));

        Assert.Equal(Errno.EINVAL, off.Errno);
        Assert.Equal("rings: can't disable tcp-data-split while device has memory provider enabled", off.Reason);
        Assert.EndsWith("(EINVAL)", off.Message, StringComparison.Ordinal);
        Assert.Equal(Errno.EINVAL, unknown.Errno);
        Assert.Equal(off.Reason, unknown.Reason);
        Assert.Equal(TcpDataSplit.Enabled, _nic.Device.TcpDataSplit);
        Assert.Same(h.Provider, _nic.Device.RxQueues[1].MemoryProvider);
    }

    [Fact]
    public void A_non_zero_hds_thresh_while_a_queue_is_bound_fails_EINVAL_and_changes_nothing()
    {
        using DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [1]);

        NetmemException e = Assert.Throws<NetmemException>(() => _nic.Device.HdsThreshold = 256);

        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal("rings: can't set non-zero hds_thresh while device is memory provider enabled", e.Reason);
        Assert.Equal(0, _nic.Device.HdsThreshold);
    }

    [Fact]
    public void Tcp_data_split_is_checked_before_hds_thresh_as_in_the_kernel()
    {
        using DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [0]);

        NetmemException e = Assert.Throws<NetmemException>(() => _nic.Device.SetRingParams(TcpDataSplit.Disabled, 512));

        Assert.Contains("can't disable tcp-data-split", e.Reason, StringComparison.Ordinal);
        Assert.Equal(TcpDataSplit.Enabled, _nic.Device.TcpDataSplit);
        Assert.Equal(0, _nic.Device.HdsThreshold);
    }

    [Fact]
    public void Setting_the_values_binding_requires_is_accepted_while_bound()
    {
        using DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [1]);

        _nic.Device.SetRingParams(TcpDataSplit.Enabled, 0);
        _nic.Device.TcpDataSplit = TcpDataSplit.Enabled;
        _nic.Device.HdsThreshold = 0;

        Assert.Equal(TcpDataSplit.Enabled, _nic.Device.TcpDataSplit);
        Assert.Equal(0, _nic.Device.HdsThreshold);
    }

    [Fact]
    public void After_a_refused_change_a_restart_of_the_bound_queue_still_puts_payloads_in_the_binding()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port));
        using DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [1]);
        Assert.Equal(DevmemCmsgType.Dmabuf, ReceiveOne(socket, 1));

        Assert.Throws<NetmemException>(() => _nic.Device.TcpDataSplit = TcpDataSplit.Disabled);
        Assert.Throws<NetmemException>(() => _nic.Device.HdsThreshold = 128);
        _nic.Device.RestartQueue(1);
        _pools.Capture(_nic);

        Assert.True(_nic.QueueMemory(1)!.HeaderDataSplit);
        Assert.Equal(h.BindingId, NetdevIntrospection.DmabufIdOf(_nic.QueueMemory(1)!.PayloadPool));
        Assert.Equal(DevmemCmsgType.Dmabuf, ReceiveOne(socket, 2));
        Assert.Equal(2, socket.DeliveredPackets);
        Assert.Equal(0, _nic.QueueCounters(1).Drops);
    }

    [Fact]
    public void Without_a_bound_queue_both_settings_change_and_apply_at_the_next_restart()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port));
        DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [1]);
        h.Dispose();
        Assert.False(_nic.Device.HasBoundQueue);

        _nic.Device.HdsThreshold = 256;
        _nic.Device.TcpDataSplit = TcpDataSplit.Disabled;
        _nic.Device.RestartQueue(1);
        _pools.Capture(_nic);

        Assert.Equal(TcpDataSplit.Disabled, _nic.Device.TcpDataSplit);
        Assert.Equal(256, _nic.Device.HdsThreshold);
        Assert.False(_nic.QueueMemory(1)!.HeaderDataSplit);
        Assert.Equal(DevmemCmsgType.Linear, ReceiveOne(socket, 3));
    }

    [Fact]
    public void A_negative_hds_thresh_is_refused_as_an_argument_error()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _nic.Device.HdsThreshold = -1);
        Assert.Equal(0, _nic.Device.HdsThreshold);
    }
}
