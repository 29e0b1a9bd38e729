using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Native;
using Netmem.Net;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Drivers;

/// <summary>
/// SimNic transmits devmem sends: its device DMA-reads the payload from the TX binding into a
/// frame behind the headers it writes, and the wire loops the frame into an rx queue, where an
/// ordinary socket reads exactly the bytes that were in the region.
/// </summary>
public sealed class SimNicTxTests
{
    private const ushort FarPort = 7601;

    private static readonly IPEndPoint Source = new(IPAddress.Parse("10.7.0.1"), 7600);
    private static readonly IPEndPoint Far = new(IPAddress.Parse("10.7.0.2"), FarPort);

    private static SimNic NewNic(string name, int mtu = 9000, int txRing = 1024) =>
        new(name, new SimNicOptions { RxQueues = 2, RxRingSize = 64, PoolSize = 256, Mtu = mtu, TxRingSize = txRing, HeaderDataSplit = false });

    private static DevmemSocket Sender(SimNic nic, DevmemSocket? socket = null)
    {
        socket ??= new DevmemSocket(FlowKey.Udp((ushort)Source.Port));
        socket.ZeroCopy = true;
        socket.Connect(nic.Device, Source, Far);
        return socket;
    }

    /// <summary>Receives one datagram's linear bytes from <paramref name="socket"/>, waiting (bounded).</summary>
    private static byte[] ReceiveOne(DevmemSocket socket)
    {
        WaitUntil(() => socket.QueuedFragments > 0, "the looped datagram did not arrive");
        var cmsgs = new DmabufCmsg[32];
        byte[] linear = new byte[64 * 1024];
        int n = socket.Receive(cmsgs, linear, out int used);
        Assert.True(n >= 1);
        Assert.True(cmsgs[n - 1].IsEndOfPacket);
        Assert.All(cmsgs.AsSpan(0, n).ToArray(), c => Assert.Equal(DevmemCmsgType.Linear, c.Type));
        return linear[..used];
    }

    private static void WaitAllEnded(DevmemSocket s) =>
        WaitUntil(() => s.SendsInFlight == 0, "sends stayed in flight");

    [Theory]
    [InlineData(0L, 1)]
    [InlineData(100L, 64)]
    [InlineData(4096L - 700, 1400)]
    [InlineData(3 * 4096L + 5, 4095)]
    [InlineData(8 * 4096L - 1, 8972)]
    public void A_send_arrives_at_the_far_socket_with_exactly_the_region_bytes(long offset, int length)
    {
        using DmabufRegion region = DmabufRegion.CreateMemfd("simtx", 32 * 4096);
        FrameBuilder.FillPayload(region.GetSpan(offset, length), (ulong)offset);
        using SimNic nic = NewNic("simtx");
        using DmabufBindingHandle tx = nic.Device.BindDmabufTx(region);
        using DevmemSocket far = nic.OpenSocket(FlowKey.Udp(FarPort));
        using DevmemSocket sender = Sender(nic);

        Assert.Equal(length, sender.SendDmabuf((uint)tx.BindingId, [new DmabufIov((ulong)offset, (uint)length)]));

        byte[] got = ReceiveOne(far);
        Assert.Equal(region.GetSpan(offset, length).ToArray(), got);
        WaitAllEnded(sender);
        var c = new ZeroCopyCompletion[1];
        Assert.Equal(1, sender.ReadCompletions(c));
        Assert.Equal(new ZeroCopyCompletion(0, 0, ZeroCopyCode.ZeroCopy), c[0]);
        Assert.Equal(1, nic.TxStats.Completed);
        Assert.Equal(length, nic.TxStats.Bytes);
    }

    [Fact]
    public void A_device_only_region_is_sent_from_without_the_cpu_reading_it()
    {
        using DmabufRegion region = DmabufRegion.CreateDeviceOnly(8 * 4096);
        using SimNic nic = NewNic("simtx-devonly");
        using DmabufBindingHandle tx = nic.Device.BindDmabufTx(region);
        byte[] payload = new byte[3000];
        FrameBuilder.FillPayload(payload, 42);
        nic.Dma.DmaWrite(tx.Binding.Segments[0].DmaAddress + 4000, payload); // a device put it there
        using DevmemSocket far = nic.OpenSocket(FlowKey.Udp(FarPort));
        using DevmemSocket sender = Sender(nic);

        sender.SendDmabuf((uint)tx.BindingId, [new DmabufIov(4000, 1000), new DmabufIov(5000, 2000)]);

        Assert.Equal(payload, ReceiveOne(far));
        Assert.Throws<InvalidOperationException>(() => region.GetSpan(0, 1));
    }

    [Fact]
    public void The_wire_can_loop_to_another_nic_and_queue()
    {
        using DmabufRegion region = DmabufRegion.CreateMemfd("simtx-peer", 4 * 4096);
        FrameBuilder.FillPayload(region.GetSpan(0, 512), 7);
        using SimNic nic = NewNic("simtx-a");
        using SimNic peer = NewNic("simtx-b");
        nic.LoopTxTo(peer, 1);
        using DmabufBindingHandle tx = nic.Device.BindDmabufTx(region);
        using DevmemSocket far = peer.OpenSocket(FlowKey.Udp(FarPort));
        using DevmemSocket sender = Sender(nic);

        sender.SendDmabuf((uint)tx.BindingId, [new DmabufIov(0, 512)]);

        Assert.Equal(region.GetSpan(0, 512).ToArray(), ReceiveOne(far));
        Assert.Equal(1, peer.QueueCounters(1).Packets);
    }

    [Fact]
    public void A_payload_over_the_mtu_is_refused_with_emsgsize_by_the_device()
    {
        using DmabufRegion region = DmabufRegion.CreateMemfd("simtx-mtu", 4 * 4096);
        using SimNic nic = NewNic("simtx-mtu", mtu: 1500);
        using DmabufBindingHandle tx = nic.Device.BindDmabufTx(region);
        using DevmemSocket sender = Sender(nic);

        var e = Assert.Throws<NetmemException>(() => sender.SendDmabuf((uint)tx.BindingId, [new DmabufIov(0, 1473)]));
        Assert.Equal(Errno.EMSGSIZE, e.Errno);
        Assert.Contains("MTU", e.Message, StringComparison.Ordinal);
        Assert.Equal(0, sender.ZeroCopySends);
        Assert.Equal(1472, sender.SendDmabuf((uint)tx.BindingId, [new DmabufIov(0, 1472)]));
    }

    [Fact]
    public void Disposing_the_nic_with_sends_queued_ends_every_one_and_the_counts_add_up()
    {
        using DmabufRegion region = DmabufRegion.CreateMemfd("simtx-dispose", 16 * 4096);
        SimNic nic = NewNic("simtx-dispose", txRing: 4096);
        DmabufBindingHandle tx = nic.Device.BindDmabufTx(region);
        using var sender = new DevmemSocket(FlowKey.Udp((ushort)Source.Port), maxTxInFlight: 4096);
        Sender(nic, sender);
        int sent = 0;
        for (int i = 0; i < 3000 && sender.TrySendDmabuf((uint)tx.BindingId, [new DmabufIov((ulong)(i % 16) * 4096, 1000)], out _) == 0; i++)
        {
            sent++;
        }

        nic.Dispose();
        tx.Dispose();

        Assert.True(sent > 0);
        Assert.Equal(sent, sender.ZeroCopySends);
        Assert.Equal(0, sender.SendsInFlight);
        Assert.Equal(sent, sender.ZeroCopyCompleted + sender.ZeroCopyCancelled);
        Assert.Equal(sent, nic.TxStats.Completed + nic.TxStats.Cancelled);
        Assert.True(tx.Binding.IsFreed);
    }

    [Fact]
    public void Ten_thousand_sends_complete_in_order_and_every_one_arrives()
    {
        const int Count = 10_000;
        using DmabufRegion region = DmabufRegion.CreateMemfd("simtx-many", 64 * 4096);
        for (int i = 0; i < 64; i++)
        {
            FrameBuilder.FillPayload(region.GetSpan(i * 4096L, 1400), (ulong)i);
        }

        using SimNic nic = NewNic("simtx-many");
        using DmabufBindingHandle tx = nic.Device.BindDmabufTx(region);
        using DevmemSocket far = nic.OpenSocket(FlowKey.Udp(FarPort), maxOutstanding: 4096);
        using DevmemSocket sender = Sender(nic);
        var completions = new ZeroCopyCompletion[64];
        uint nextCompleted = 0;
        int received = 0;
        var cmsgs = new DmabufCmsg[64];
        byte[] linear = new byte[64 * 1400];
        DateTime end = DateTime.UtcNow + WaitLimit;
        for (int i = 0; i < Count; i++)
        {
            while (sender.TrySendDmabuf((uint)tx.BindingId, [new DmabufIov((ulong)(i % 64) * 4096, 1400)], out _) != 0)
            {
                Assert.True(DateTime.UtcNow < end, "sends stayed refused");
                nextCompleted = ReadInOrder(sender, completions, nextCompleted);
                received += DrainVerifying(far, cmsgs, linear);
            }

            nextCompleted = ReadInOrder(sender, completions, nextCompleted);
            received += DrainVerifying(far, cmsgs, linear);
        }

        WaitUntil(() =>
        {
            nextCompleted = ReadInOrder(sender, completions, nextCompleted);
            received += DrainVerifying(far, cmsgs, linear);
            return received + far.QueuedFragments == Count - nic.TxWireDrops && sender.SendsInFlight == 0;
        }, "not every datagram arrived");

        received += DrainVerifying(far, cmsgs, linear);
        nextCompleted = ReadInOrder(sender, completions, nextCompleted);
        Assert.Equal((uint)Count, nextCompleted);
        Assert.Equal(Count, sender.ZeroCopyCompleted);
        Assert.Equal(Count - nic.TxWireDrops, received);
    }

    private static uint ReadInOrder(DevmemSocket s, ZeroCopyCompletion[] buf, uint next)
    {
        int n;
        while ((n = s.ReadCompletions(buf)) > 0)
        {
            foreach (ZeroCopyCompletion c in buf.AsSpan(0, n))
            {
                Assert.Equal(next, c.First);
                Assert.Equal(ZeroCopyCode.ZeroCopy, c.Code);
                next = c.Last + 1;
            }
        }

        return next;
    }

    private static int DrainVerifying(DevmemSocket s, DmabufCmsg[] cmsgs, byte[] linear)
    {
        int packets = 0;
        int n;
        while ((n = s.Receive(cmsgs, linear, out _)) > 0)
        {
            foreach (DmabufCmsg c in cmsgs.AsSpan(0, n))
            {
                Assert.True(FrameBuilder.VerifyPayload(linear.AsSpan(c.LinearOffset, (int)c.FragSize)), "a relayed payload differs");
                packets += c.IsEndOfPacket ? 1 : 0;
            }
        }

        return packets;
    }
}
