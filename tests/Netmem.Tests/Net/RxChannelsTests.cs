using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.SimNic;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Drivers;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Net;

/// <summary>
/// The ethtool channels operation (<c>ethnl_set_channels</c>) on a SimNic: the checks in the
/// kernel's order, each with its errno and extack text (EINVAL "too low for existing memory
/// provider setting (N)" when a bound queue would be deactivated), what an inactive queue is
/// (no memory, not bindable), and growing and shrinking unbound queues under traffic with every
/// frame accounted for.
/// </summary>
public sealed class RxChannelsTests : IDisposable
{
    private const ushort Port = 7600;
    private readonly PageArena _arena = new(32 << 20);
    private readonly DmabufRegion _region;
    private readonly SimNic _nic;
    private readonly PoolTracker _pools = new();

    public RxChannelsTests()
    {
        _region = DmabufRegion.CreateMemfd("chan", 1 << 20);
        _nic = new SimNic("chan", new SimNicOptions { RxQueues = 4, RxRingSize = 32, PoolSize = 64, FifoSlots = 256, Arena = _arena });
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

    private NetmemException SetFails(int count) => Assert.Throws<NetmemException>(() => _nic.Device.SetRxChannels(count));

    [Fact]
    public void A_device_starts_with_every_queue_active()
    {
        Assert.Equal(4, _nic.Device.RxChannelCount);
        Assert.Equal(4, _nic.Device.MaxRxChannels);
        Assert.Equal(0, _nic.Device.MinMemoryProviderChannelCount);
        Assert.All(Enumerable.Range(0, 4), q => Assert.NotNull(_nic.QueueMemory(q)));
    }

    [Fact]
    public void Shrinking_so_that_a_bound_queue_would_be_deactivated_fails_EINVAL_naming_the_minimum()
    {
        using DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [2]);
        Assert.Equal(3, _nic.Device.MinMemoryProviderChannelCount);

        NetmemException e = SetFails(2);

        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Equal("chan: requested channel counts are too low for existing memory provider setting (3)", e.Reason);
        Assert.Equal(4, _nic.Device.RxChannelCount);
        Assert.Same(h.Provider, _nic.Device.RxQueues[2].MemoryProvider);
        Assert.Equal(h.BindingId, NetdevIntrospection.DmabufIdOf(_nic.QueueMemory(2)!.PayloadPool));
        Assert.NotNull(_nic.QueueMemory(3));
    }

    [Fact]
    public void Shrinking_down_to_the_highest_bound_queue_is_allowed_and_keeps_it_bound()
    {
        using DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [2]);

        _nic.Device.SetRxChannels(3);

        Assert.Equal(3, _nic.Device.RxChannelCount);
        Assert.Null(_nic.QueueMemory(3));
        Assert.Same(h.Provider, _nic.Device.RxQueues[2].MemoryProvider);
        Assert.Equal(h.BindingId, NetdevIntrospection.DmabufIdOf(_nic.QueueMemory(2)!.PayloadPool));
    }

    [Fact]
    public void Counts_outside_one_to_the_maximum_fail_EINVAL_in_the_kernel_order()
    {
        NetmemException tooMany = SetFails(5);
        NetmemException none = SetFails(0);
        NetmemException negative = SetFails(-1);

        Assert.Equal(Errno.EINVAL, tooMany.Errno);
        Assert.Equal("chan: requested channel count exceeds maximum", tooMany.Reason);
        Assert.Equal(Errno.EINVAL, none.Errno);
        Assert.Equal("chan: requested channel counts would result in no RX or TX channel being configured", none.Reason);
        Assert.Equal(none.Reason, negative.Reason);
        Assert.Equal(4, _nic.Device.RxChannelCount);
    }

    [Fact]
    public void A_device_without_a_channel_operation_fails_EOPNOTSUPP()
    {
        var dev = new NetDevice("chan-noops", 2);
        dev.Register();

        NetmemException e = Assert.Throws<NetmemException>(() => dev.SetRxChannels(1));

        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Equal("chan-noops: driver does not support changing its channel count", e.Reason);
        Assert.Equal(2, dev.RxChannelCount);
        dev.Unregister();
    }

    [Fact]
    public void An_inactive_queue_cannot_be_bound_or_restarted_ERANGE_until_it_is_active_again()
    {
        _nic.Device.SetRxChannels(2);
        Assert.Null(_nic.QueueMemory(2));
        Assert.Null(_nic.QueueMemory(3));

        NetmemException bind = Assert.Throws<NetmemException>(() => _nic.Device.BindDmabuf(_region, [3]));
        NetmemException restart = Assert.Throws<NetmemException>(() => _nic.Device.RestartQueue(2));

        Assert.Equal(Errno.ERANGE, bind.Errno);
        Assert.Equal("chan: rx queue index 3 out of range (device has 2)", bind.Reason);
        Assert.Equal(Errno.ERANGE, restart.Errno);
        Assert.Equal(0, _nic.Dma.SegmentCount);
        Assert.Equal([0, 1], NetdevIntrospection.Queues().Where(q => q.Ifindex == _nic.Device.Ifindex).Select(q => q.Id));
        Assert.Equal(2, NetdevIntrospection.Devices().Single(d => d.Ifindex == _nic.Device.Ifindex).RxQueues);

        _nic.Device.SetRxChannels(4);
        _pools.Capture(_nic);
        using DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [3]);
        _pools.Capture(_nic);
        Assert.Equal(h.BindingId, NetdevIntrospection.DmabufIdOf(_nic.QueueMemory(3)!.PayloadPool));
        Assert.Equal(4, _nic.Device.MinMemoryProviderChannelCount);
    }

    [Fact]
    public void Growing_and_shrinking_unbound_queues_under_traffic_loses_no_frame()
    {
        const int Frames = 6000;
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port), maxOutstanding: 8192);
        using DmabufBindingHandle h = _nic.Device.BindDmabuf(_region, [0]);
        _pools.Capture(_nic);

        // The injector keeps at most Window datagrams not yet drained, so the socket never holds
        // more net_iovs than the binding has, whatever the scheduling.
        const int Window = 128;
        long rejected = 0;
        int injected = 0;
        int drained = 0;
        Exception? injectorError = null;
        var injector = new Thread(() =>
        {
            try
            {
                byte[] frame = new byte[9100];
                DateTime end = DateTime.UtcNow + TimeSpan.FromMinutes(2);
                for (int i = 0; i < Frames; i++)
                {
                    while (i - Volatile.Read(ref drained) >= Window)
                    {
                        Assert.True(DateTime.UtcNow < end, "the consumer stopped draining");
                        Thread.Yield();
                    }

                    // Every queue in turn, active or not: frames for an inactive one go to an active one.
                    rejected += InjectBounded(_nic, i % 4, frame.AsSpan(0, UdpFrame(frame, (ulong)i, 200 + (i % 3000), Port)));
                    Volatile.Write(ref injected, i + 1);
                }
            }
            catch (Exception e)
            {
                injectorError = e;
            }
        });

        var seqs = new List<ulong>();
        injector.Start();
        int[] counts = [1, 3, 2, 4, 1, 4, 2, 3, 4];
        int step = 0;
        DateTime deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (injector.IsAlive)
        {
            Assert.True(DateTime.UtcNow < deadline, "the traffic did not finish");
            if (step < counts.Length && Volatile.Read(ref injected) >= (step + 1) * Frames / (counts.Length + 1))
            {
                _nic.Device.SetRxChannels(counts[step++]);
                _pools.Capture(_nic);
                Assert.Same(h.Provider, _nic.Device.RxQueues[0].MemoryProvider);
            }

            Drain(socket, null, seqs);
            Volatile.Write(ref drained, seqs.Count);
            Thread.Yield();
        }

        injector.Join();
        Assert.Null(injectorError);
        while (step < counts.Length)
        {
            _nic.Device.SetRxChannels(counts[step++]);
        }

        WaitIdle(_nic);
        Drain(socket, null, seqs);

        Assert.Equal(counts.Length, step);
        Assert.Equal(4, _nic.Device.RxChannelCount);
        long drops = Enumerable.Range(0, 4).Sum(q => _nic.QueueCounters(q).Drops);
        long fifoFull = Enumerable.Range(0, 4).Sum(q => _nic.QueueCounters(q).DropsFor(Netmem.Drivers.Parsing.DropReason.RxFifoFull));
        Assert.Equal(Frames + rejected, Accounted(_nic));
        Assert.Equal(rejected, fifoFull);
        Assert.Equal(fifoFull, drops);
        Assert.Equal(Frames, socket.DeliveredPackets);
        Assert.Equal(Frames, seqs.Count);
        Assert.Equal(Enumerable.Range(0, Frames).Select(i => (ulong)i), seqs.Order());
        Assert.Equal(0, socket.TokensOutstanding);
    }
}
