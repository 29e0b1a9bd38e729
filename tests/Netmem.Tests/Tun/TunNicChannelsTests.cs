using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>
/// The channels operation on a multi-queue TunNic: shrinking detaches queue descriptors
/// (TUNSETQUEUE), so the kernel steers every flow to the queues left; growing attaches them
/// again. Between changes every datagram sent arrives. A bound queue refuses to be detached.
/// Needs root and network namespaces.
/// </summary>
public sealed class TunNicChannelsTests(ITestOutputHelper output)
{
    private const ushort Port = 7800;
    private const int Flows = 16;
    private const int PerFlow = 20;

    [Fact]
    public void Shrinking_and_growing_a_multi_queue_tun_moves_every_flow_and_loses_no_datagram()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var arena = new PageArena(64 << 20);
        using var region = DmabufRegion.CreateMemfd("tun-chan", 4 << 20);
        var nic = new TunNic(ns, new TunNicOptions { Queues = 4, Arena = arena });
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port));
        var senders = new NamespaceUdpSender[Flows];
        for (int i = 0; i < Flows; i++)
        {
            senders[i] = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv4, Port), 1000);
        }

        try
        {
            Assert.Equal(4, nic.Device.RxChannelCount);
            Assert.Equal(Flows * PerFlow, SendAndReceive(senders, socket));

            nic.Device.SetRxChannels(2);
            Assert.Equal(2, nic.Device.RxChannelCount);
            Assert.Null(nic.QueueMemory(2));
            Assert.Null(nic.QueueMemory(3));
            long detached = nic.QueueCounters(2).Packets + nic.QueueCounters(3).Packets;
            Assert.Equal(Flows * PerFlow, SendAndReceive(senders, socket));
            Assert.Equal(detached, nic.QueueCounters(2).Packets + nic.QueueCounters(3).Packets);

            // Queue 1 bound: it may not be detached, and the refusal changes nothing.
            using (DmabufBindingHandle h = nic.Device.BindDmabuf(region, [1]))
            {
                NetmemException e = Assert.Throws<NetmemException>(() => nic.Device.SetRxChannels(1));
                Assert.Equal(Errno.EINVAL, e.Errno);
                Assert.Equal($"{nic.Device.Name}: requested channel counts are too low for existing memory provider setting (2)", e.Reason);
                Assert.Equal(2, nic.Device.RxChannelCount);
                Assert.Equal(Flows * PerFlow, SendAndReceive(senders, socket));
            }

            nic.Device.SetRxChannels(4);
            long[] before = [nic.QueueCounters(2).Packets, nic.QueueCounters(3).Packets];
            Assert.Equal(Flows * PerFlow, SendAndReceive(senders, socket));
            long reattached = nic.QueueCounters(2).Packets + nic.QueueCounters(3).Packets - before[0] - before[1];
            output.WriteLine($"per queue: {string.Join(", ", Enumerable.Range(0, 4).Select(q => nic.QueueCounters(q).Packets))}; re-attached queues took {reattached}");
            Assert.True(reattached > 0, "no flow reached the re-attached queues");
            Assert.Equal(4L * Flows * PerFlow, socket.DeliveredPackets);
        }
        finally
        {
            foreach (NamespaceUdpSender s in senders)
            {
                s?.Dispose();
            }

            List<PagePool> pools = [.. nic.Device.PagePools];
            nic.Dispose();
            Assert.All(pools, p => Assert.True(p.IsFreed, $"{p} not freed, inflight {p.Inflight}"));
        }

        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    /// <summary>Sends <see cref="PerFlow"/> datagrams on every flow and receives them (bounded); returns how many arrived.</summary>
    private static int SendAndReceive(NamespaceUdpSender[] senders, DevmemSocket socket)
    {
        var payload = new byte[600];
        foreach (NamespaceUdpSender s in senders)
        {
            for (int i = 0; i < PerFlow; i++)
            {
                s.Send(payload);
            }
        }

        int want = senders.Length * PerFlow;
        int got = 0;
        var cmsgs = new DmabufCmsg[64];
        var linear = new byte[64 * 1500];
        var tokens = new uint[64];
        DateTime end = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (got < want && DateTime.UtcNow < end)
        {
            if (!socket.WaitReadable(50))
            {
                continue;
            }

            int n = socket.Receive(cmsgs, linear, out _);
            int t = 0;
            for (int i = 0; i < n; i++)
            {
                if (cmsgs[i].Type == DevmemCmsgType.Dmabuf)
                {
                    tokens[t++] = cmsgs[i].FragToken;
                }

                if (cmsgs[i].IsEndOfPacket)
                {
                    got++;
                }
            }

            Assert.Equal(t, socket.DontNeed(tokens.AsSpan(0, t)));
        }

        return got;
    }
}
