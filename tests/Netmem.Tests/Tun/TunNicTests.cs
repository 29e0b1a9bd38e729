using System.Diagnostics;
using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>TunNic on real kernel packets, in a namespace the test creates. Needs root.</summary>
public sealed class TunNicTests(ITestOutputHelper output)
{
    [Fact]
    public void Udp_from_the_kernel_lands_in_the_bound_region_byte_for_byte_and_everything_returns()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var arena = new PageArena(64 << 20);
        using var region = DmabufRegion.CreateMemfd("tun-e2e", 16 << 20);
        var nic = new TunNic(ns, new TunNicOptions { Arena = arena });
        // Both baselines at a moment the driver has counted all the kernel handed it, so the
        // comparison covers the same packets (router solicitations included).
        TunCounters before = TunTraffic.SettledCounters(nic);
        long seenBefore = nic.PacketsSeen;
        long dropsBefore = nic.QueueCounters(0).Drops;
        DmabufBindingHandle handle = nic.Device.BindDmabuf(region, [0]);
        DevmemSocket v4 = nic.OpenSocket(FlowKey.Udp(7000));
        DevmemSocket v6 = nic.OpenSocket(FlowKey.Udp(7006));
        using var s4 = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv4, 7000), 2000);
        using var s6 = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv6, 7006), 2000);

        var payload = new byte[1452];
        var cmsgs = new DmabufCmsg[64];
        var linear = new byte[64 * 1500];
        var tokens = new uint[64];
        var packet = new byte[1500];
        long verified = 0;
        for (int seq = 0; seq < 2000; seq++)
        {
            int size = 1 + (seq * 577 % 1452);
            FrameBuilder.FillPayload(payload.AsSpan(0, size), (ulong)seq);
            ((seq & 1) == 0 ? s4 : s6).Send(payload.AsSpan(0, size));
            if (seq % 50 == 49)
            {
                verified += Drain(v4, v6, seq + 1 - verified);
            }
        }

        Assert.Equal(2000, verified);
        TunCounters delta = TunTraffic.SettledCounters(nic).Since(before);
        long delivered = nic.QueueCounters(0).Packets;
        long drops = nic.QueueCounters(0).Drops - dropsBefore;
        output.WriteLine($"delivered {delivered}, drops {drops} ({string.Join(", ", nic.QueueCounters(0).DropsByReason())}), kernel {delta}");
        Assert.Equal(2000, delivered);
        Assert.Equal(delta.TxPackets, (ulong)(nic.PacketsSeen - seenBefore));
        Assert.Equal(nic.QueueCounters(0).Drops, nic.QueueCounters(0).DropsFor(DropReason.UnsupportedProtocol));

        List<PagePool> pools = [.. nic.Device.PagePools];
        handle.Dispose();
        nic.Dispose();
        Assert.All(pools, p => Assert.True(p.IsFreed, $"{p} not freed, inflight {p.Inflight}"));
        Assert.True(handle.Binding.IsFreed);
        Assert.Equal(handle.Binding.Size, handle.Binding.Avail);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));

        long Drain(DevmemSocket a, DevmemSocket b, long want)
        {
            long got = 0;
            var sw = Stopwatch.StartNew();
            while (got < want && sw.Elapsed < TimeSpan.FromSeconds(10))
            {
                foreach (DevmemSocket s in new[] { a, b })
                {
                    int n = s.Receive(cmsgs, linear, out _);
                    int t = 0;
                    for (int i = 0; i < n; i++)
                    {
                        Assert.Equal(DevmemCmsgType.Dmabuf, cmsgs[i].Type);
                        Assert.Equal((uint)handle.BindingId, cmsgs[i].DmabufId);
                        Span<byte> bytes = region.GetSpan((long)cmsgs[i].FragOffset, (int)cmsgs[i].FragSize);
                        Assert.True(cmsgs[i].IsEndOfPacket);
                        Assert.True(FrameBuilder.VerifyPayload(bytes), $"payload mismatch ({bytes.Length} B)");
                        tokens[t++] = cmsgs[i].FragToken;
                        got++;
                    }

                    Assert.Equal(t, s.DontNeed(tokens.AsSpan(0, t)));
                }

                if (got < want)
                {
                    Thread.Sleep(1);
                }
            }

            return got;
        }
    }
}
