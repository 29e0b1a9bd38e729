using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Drivers;

/// <summary>What the consumer reads is exactly what was put on the wire.</summary>
public sealed class SimNicPayloadTests
{
    private static byte[] Payload(int length, ulong seq)
    {
        byte[] p = new byte[length];
        FrameBuilder.FillPayload(p, seq);
        return p;
    }

    private static int Frame(byte[] frame, byte[] payload, ushort port, bool ipv6 = false) =>
        FrameBuilder.BuildUdp(frame, ipv6, 0x0A000001, 0x0A000002, 4321, port, payload);

    [Fact]
    public void Payload_read_through_the_region_equals_the_injected_bytes()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("payload", 2 << 20);
        var nic = new SimNic("payload", new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, Arena = arena });
        DmabufBindingHandle h = nic.Device.BindDmabuf(region, [0]);
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7500));
        int[] sizes = [1, 7, 8, 64, 1400, 4095, 4096];
        byte[] frame = new byte[9100];
        for (int i = 0; i < sizes.Length; i++)
        {
            InjectBounded(nic, 0, frame.AsSpan(0, Frame(frame, Payload(sizes[i], (ulong)i), 7500, ipv6: (i & 1) != 0)));
        }

        WaitIdle(nic);
        var cmsgs = new DmabufCmsg[16];
        Assert.Equal(sizes.Length, socket.Receive(cmsgs, [], out _));
        for (int i = 0; i < sizes.Length; i++)
        {
            DmabufCmsg c = cmsgs[i];
            Assert.Equal(DevmemCmsgType.Dmabuf, c.Type);
            Assert.Equal((uint)h.BindingId, c.DmabufId);
            Assert.Equal((uint)sizes[i], c.FragSize);
            Assert.True(c.IsEndOfPacket);
            Assert.Equal(0ul, c.FragOffset % 4096); // each datagram starts a net_iov
            Assert.True(Payload(sizes[i], (ulong)i).AsSpan().SequenceEqual(region.GetSpan((long)c.FragOffset, (int)c.FragSize)), $"payload {i} differs");
            Assert.Equal(1, socket.DontNeed([c.FragToken]));
        }

        h.Dispose();
        nic.Dispose();
        Assert.True(h.Binding.IsFreed);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void Without_header_data_split_payload_arrives_as_linear_records_with_the_injected_bytes()
    {
        using var arena = new PageArena(32 << 20);
        var nic = new SimNic("linear", new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, HeaderDataSplit = false, Arena = arena });
        var pools = new PoolTracker();
        pools.Capture(nic);
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7501));
        int[] sizes = [1, 100, 1472, 4000, 8972];
        byte[] frame = new byte[9100];
        for (int i = 0; i < sizes.Length; i++)
        {
            InjectBounded(nic, 0, frame.AsSpan(0, Frame(frame, Payload(sizes[i], (ulong)i), 7501)));
        }

        WaitIdle(nic);
        Assert.Equal(sizes.Length, nic.QueueCounters(0).Packets);
        var cmsgs = new DmabufCmsg[16];
        byte[] linear = new byte[sizes.Sum()];
        Assert.Equal(sizes.Length, socket.Receive(cmsgs, linear, out int linearBytes));
        Assert.Equal(sizes.Sum(), linearBytes);
        for (int i = 0; i < sizes.Length; i++)
        {
            DmabufCmsg c = cmsgs[i];
            Assert.Equal(DevmemCmsgType.Linear, c.Type);
            Assert.Equal(0u, c.FragToken);
            Assert.Equal(0u, c.DmabufId);
            Assert.True(c.IsEndOfPacket);
            Assert.True(Payload(sizes[i], (ulong)i).AsSpan().SequenceEqual(linear.AsSpan(c.LinearOffset, (int)c.FragSize)), $"payload {i} differs");
        }

        Assert.Equal(0, socket.TokensOutstanding);
        nic.Dispose();
        pools.AssertAllReturned();
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
        Assert.Equal(arena.TotalPages(2), arena.FreePages(2));
    }

    [Fact]
    public void A_jumbo_payload_spans_several_net_iovs_and_reassembles_exactly()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("jumbo", 2 << 20);
        var nic = new SimNic("jumbo", new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, Mtu = 9216, Arena = arena });
        DmabufBindingHandle h = nic.Device.BindDmabuf(region, [0]);
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7502));
        byte[] frame = new byte[9300];
        byte[][] sent = [Payload(9000, 1), Payload(9000, 2)];
        foreach (byte[] p in sent)
        {
            InjectBounded(nic, 0, frame.AsSpan(0, Frame(frame, p, 7502, ipv6: p == sent[1])));
        }

        WaitIdle(nic);
        Assert.Equal(2, nic.QueueCounters(0).Packets);
        Assert.Equal(18000, nic.QueueCounters(0).Bytes);
        var cmsgs = new DmabufCmsg[16];
        int n = socket.Receive(cmsgs, [], out _);
        Assert.Equal(6, n); // 4096 + 4096 + 808 each
        for (int d = 0; d < 2; d++)
        {
            byte[] got = new byte[9000];
            int at = 0;
            for (int k = 0; k < 3; k++)
            {
                DmabufCmsg c = cmsgs[(d * 3) + k];
                Assert.Equal(DevmemCmsgType.Dmabuf, c.Type);
                Assert.Equal(k == 2, c.IsEndOfPacket);
                Assert.Equal(k == 2 ? 808u : 4096u, c.FragSize);
                region.GetSpan((long)c.FragOffset, (int)c.FragSize).CopyTo(got.AsSpan(at));
                at += (int)c.FragSize;
            }

            Assert.Equal(9000, at);
            Assert.Equal(sent[d], got);
        }

        Assert.Equal(6, socket.DontNeed(cmsgs.AsSpan(0, n).ToArray().Select(c => c.FragToken).ToArray()));
        Assert.Equal(6, cmsgs.AsSpan(0, n).ToArray().Select(c => c.FragToken).Distinct().Count());
        h.Dispose();
        nic.Dispose();
        Assert.True(h.Binding.IsFreed);
        Assert.Equal(h.Binding.Size, h.Binding.Avail);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void A_jumbo_frame_over_the_default_mtu_is_dropped_as_FrameTooLarge()
    {
        using var arena = new PageArena(16 << 20);
        var nic = new SimNic("jumbo-mtu", new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, Arena = arena });
        byte[] frame = new byte[9300];
        Assert.True(nic.Inject(0, frame.AsSpan(0, Frame(frame, Payload(9000, 1), 7503))));
        WaitIdle(nic);
        Assert.Equal(1, nic.QueueCounters(0).DropsFor(DropReason.FrameTooLarge));
        nic.Dispose();
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }
}
