using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>
/// A legal IPv6/UDP packet from the kernel whose extension headers are longer than one header
/// buffer (possible at a 9000-byte MTU) is delivered byte for byte; it used to kill the process.
/// Needs root; skips with the reason otherwise.
/// </summary>
public sealed class TunNicLongHeaderTests(ITestOutputHelper output)
{
    private const ushort Port = 7800;
    private const int Mtu = 9000;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_IPv6_packet_with_6_KiB_of_extension_headers_at_MTU_9000_is_delivered_and_nothing_leaks(bool headerDataSplit)
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var arena = new PageArena(64 << 20);
        using var region = DmabufRegion.CreateMemfd("tun-longhdr", 4 << 20);

        // A silent device (no IPv6 link-local, so no router solicitations): every packet is ours.
        var nic = new TunNic(ns, new TunNicOptions
        {
            Arena = arena,
            Mtu = Mtu,
            HeaderDataSplit = headerDataSplit,
            Configuration = new TunConfiguration { Mtu = Mtu, IPv6LinkLocal = false },
        });
        DmabufBindingHandle? handle = null;
        List<PagePool> pools = [];
        try
        {
            handle = headerDataSplit ? nic.Device.BindDmabuf(region, [0]) : null;
            pools.AddRange(nic.Device.PagePools);
            DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port));
            RxCounters counters = nic.QueueCounters(0);
            TunCounters before = TunTraffic.SettledCounters(nic);
            long seenBefore = nic.PacketsSeen;

            // Hop-by-hop, destination options and routing headers of 2048 bytes each (the most
            // one can be), written whole through a raw IPPROTO_RAW socket (the kernel sends it
            // as given) from the device's address to its peer: 6192 bytes of headers.
            Assert.Equal(TunDevice.PeerIPv6, PacketBuilder.V6Dst);
            Assert.Equal(TunDevice.LocalIPv6, PacketBuilder.V6Src);
            byte[] payload = new byte[2000];
            FrameBuilder.FillPayload(payload, 0);
            byte[] packet = PacketBuilder.IPv6(
                IpPacketParser.ProtocolUdp,
                PacketBuilder.Udp(4321, Port, payload),
                [(0, 2048), (60, 2048), (43, 2048)]);
            Assert.True(packet.Length <= Mtu);
            Assert.True(packet.Length - payload.Length > nic.QueueMemory(0)!.HeaderPool.NetmemSize || !headerDataSplit);
            using (Socket raw = ns.Run(() => new Socket(AddressFamily.InterNetworkV6, SocketType.Raw, ProtocolType.Raw)))
            {
                Assert.Equal(packet.Length, raw.SendTo(packet, new IPEndPoint(TunDevice.PeerIPv6, 0)));
            }

            Assert.True(TunTraffic.WaitSeen(nic, seenBefore + 1), "the driver did not read the packet");
            TunTraffic.WaitSettled(nic);
            TunCounters delta = nic.ReadKernelCounters().Since(before);
            output.WriteLine($"delivered {counters.Packets}, drops {string.Join(", ", counters.DropsByReason())}, kernel {delta}");

            Assert.Equal(1UL, delta.TxPackets);
            Assert.Equal((ulong)packet.Length, delta.TxBytes);
            Assert.Equal(1, counters.Packets);
            Assert.Equal(payload.Length, counters.Bytes);
            Assert.Equal(0, counters.Drops);
            Assert.Equal(0, counters.PollExceptions);
            var drain = new VerifyingDrain(socket, region, 1, _ => payload.Length);
            drain.DrainUntil(1);
            Assert.True(drain.Errors.Count == 0, string.Join("; ", drain.Errors));
            Assert.Equal(1, drain.Verified);
        }
        finally
        {
            handle?.Dispose();
            nic.Dispose();
        }

        TunTraffic.AssertTornDown(pools, handle is null ? [] : [handle], arena);
    }
}
