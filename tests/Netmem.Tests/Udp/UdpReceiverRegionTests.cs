using Netmem.Devmem;
using Netmem.Drivers.Udp;
using Netmem.Native;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.UdpRx;

/// <summary>
/// Receiving into a bound memfd region: the buffers are the binding's <c>net_iov</c>s, payloads
/// are read through the region, a device-only region is refused, and closing frees the binding.
/// </summary>
public sealed class UdpReceiverRegionTests
{
    public static TheoryData<UdpReceivePath> Paths => [UdpReceivePath.IoUring, UdpReceivePath.RecvMmsg];

    [Theory]
    [MemberData(nameof(Paths))]
    public void Payloads_land_in_the_region_as_net_iovs_and_read_back_verified_through_it(UdpReceivePath path)
    {
        if (path == UdpReceivePath.IoUring)
        {
            Requires.IoUring();
        }

        using var region = DmabufRegion.CreateMemfd("udp-region", 4 << 20);
        var rx = new UdpReceiver(new UdpReceiverOptions { Path = path, Region = region, BufferRingEntries = 256 });
        DmabufBinding binding = DmabufBinding.FromId(rx.BindingId)!;
        Assert.Same(region, binding.Region);
        Func<ulong, int> size = UdpTraffic.Mixed(1400);
        using var traffic = new UdpTraffic(rx.LocalEndpoint, 2, 2_000, size, window: 128);
        traffic.Start();

        var batch = new UdpDatagram[32];
        long deadline = Environment.TickCount64 + 60_000;
        while (traffic.Verified + traffic.Bad < traffic.Total && Environment.TickCount64 < deadline)
        {
            int n = rx.Receive(batch, 100);
            for (int i = 0; i < n; i++)
            {
                UdpDatagram d = batch[i];
                Assert.True(d.Netmem.IsNetIov);
                Assert.Equal(rx.BindingId, d.Netmem.BindingId);
                traffic.Check(region.ReadNetIov(d.Netmem, d.Offset, d.Length), d);
            }

            rx.Return(batch.AsSpan(0, n));
            traffic.Consumed(n);
        }

        traffic.Join();
        Assert.Equal(traffic.Total, traffic.Verified);
        Assert.Equal(0, traffic.Bad);
        Assert.Equal(0, rx.GetStats().KernelDrops);
        PagePool pool = rx.Pool;
        rx.Dispose();
        Assert.Equal(0, pool.Inflight);
        Assert.True(pool.IsFreed);
        Assert.Equal(0, binding.OutstandingNetIovs);
        Assert.True(binding.IsFreed);
    }

    [Fact]
    public void A_region_payload_is_not_handed_out_as_a_plain_span()
    {
        using var region = DmabufRegion.CreateMemfd("udp-region-span", 1 << 20);
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.RecvMmsg, Region = region, RecvMmsgBatch = 8 });
        UdpTraffic.SendNow(rx.LocalEndpoint, 1, _ => 500);
        var batch = new UdpDatagram[1];
        Assert.Equal(1, rx.Receive(batch, 10_000));

        var e = Assert.Throws<InvalidOperationException>(() => batch[0].Payload.Length);
        Assert.Contains("DmabufRegion", e.Message, StringComparison.Ordinal);
        Assert.Equal(500, rx.GetPayload(batch[0]).Length);
        rx.Return(batch[0]);
    }

    [Fact]
    public void A_device_only_region_is_refused_with_EOPNOTSUPP_because_the_kernel_copies_with_the_CPU()
    {
        using var region = DmabufRegion.CreateDeviceOnly(1 << 20);

        var e = Assert.Throws<NetmemException>(() => new UdpReceiver(new UdpReceiverOptions { Region = region, Name = "udp-devonly" }));

        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Contains("device-only", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(PagePool.All, p => p.Name == "udp-devonly" && !p.IsFreed);
    }

    [Fact]
    public void A_region_with_larger_buffers_than_a_net_iov_is_refused_with_E2BIG()
    {
        using var region = DmabufRegion.CreateMemfd("udp-region-order", 1 << 20);

        var e = Assert.Throws<NetmemException>(() => new UdpReceiver(new UdpReceiverOptions { Region = region, BufferOrder = 1 }));

        Assert.Equal(Errno.E2BIG, e.Errno);
    }
}
