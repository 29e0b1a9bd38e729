using System.Diagnostics;
using System.Net;
using Netmem.Drivers.Udp;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.UdpRx;

/// <summary>
/// A million loopback datagrams of mixed sizes through each path, every payload verified, and
/// the conservation at the end: sent = received + the kernel's drops (paced by credit, so no drops),
/// and every pool netmem back after dispose.
/// </summary>
public sealed class UdpReceiverVolumeTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(UdpReceivePath.IoUring)]
    [InlineData(UdpReceivePath.RecvMmsg)]
    public void A_million_mixed_size_datagrams_from_three_senders_all_arrive_verified(UdpReceivePath path)
    {
        if (path == UdpReceivePath.IoUring)
        {
            Requires.IoUring();
        }

        const int Senders = 3;
        const int PerSender = 333_334;
        var rx = new UdpReceiver(new UdpReceiverOptions { Path = path, Name = "udp-volume-" + path });
        PagePool pool = rx.Pool;
        using var traffic = new UdpTraffic(rx.LocalEndpoint, Senders, PerSender, UdpTraffic.Mixed(1400), window: 512);
        var clock = Stopwatch.StartNew();
        traffic.Start();
        traffic.Drain(rx, batchSize: 128);
        clock.Stop();
        traffic.Join();
        UdpReceiverStats stats = rx.GetStats();
        rx.Dispose();

        output.WriteLine($"{path}: {traffic.Verified} datagrams verified in {clock.Elapsed.TotalSeconds:F1} s; {stats}");
        Assert.Equal(path, stats.Path);
        Assert.Equal(traffic.Total, traffic.Sent);
        Assert.Equal(0, traffic.Bad);
        Assert.Equal(traffic.Total, traffic.Verified);
        Assert.Equal(traffic.Total, stats.Datagrams);
        Assert.Equal(0, stats.KernelDrops);
        Assert.Equal(traffic.Sent, stats.Datagrams + stats.KernelDrops);
        Assert.Equal(0, stats.Truncated);
        Assert.Equal(0, pool.Inflight);
        Assert.True(pool.IsFreed);
    }
}
