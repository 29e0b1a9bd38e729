using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>
/// TunNic under real kernel traffic, each test in a namespace of its own: volume with byte-exact
/// verification through the bound region, binding changes under load, kernel chatter that is not
/// UDP, fragments, and the teardown invariants. Needs root; skips with the reason otherwise.
/// </summary>
public sealed class TunNicTrafficTests(ITestOutputHelper output)
{
    private const int MaxV4Payload = 1500 - 20 - 8;
    private const int MaxV6Payload = 1500 - 40 - 8;


    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_one_of_100000_mixed_size_datagrams_is_delivered_byte_exact_or_counted_and_the_total_matches_the_kernel(bool ipv6)
    {
        Requires.NetNamespaces();

        const int Count = 100_000;
        const ushort Port = 7100;
        int max = ipv6 ? MaxV6Payload : MaxV4Payload;
        int SizeOf(int seq) => TunTraffic.SizeOf(seq, max);

        using var ns = NetNamespace.Create();
        using var arena = new PageArena(64 << 20);
        using var region = DmabufRegion.CreateMemfd("tun-mixed", 32 << 20);
        var nic = new TunNic(ns, new TunNicOptions { Arena = arena });
        DmabufBindingHandle? handle = null;
        List<PagePool> pools = [];
        try
        {
            handle = nic.Device.BindDmabuf(region, [0]);
            pools.AddRange(nic.Device.PagePools);
            DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port));
            using var sender = new NamespaceUdpSender(ns, new IPEndPoint(ipv6 ? TunDevice.PeerIPv6 : TunDevice.PeerIPv4, Port), Count);
            var drain = new VerifyingDrain(socket, region, Count, SizeOf);
            Netmem.Drivers.Common.RxCounters counters = nic.QueueCounters(0);

            // Baselines at a moment the driver has counted all the kernel handed it (router
            // solicitations may come at any time; both counts include them from here on).
            TunCounters before = TunTraffic.SettledCounters(nic);
            long seenBefore = nic.PacketsSeen;
            long deliveredBefore = counters.Packets;
            long bytesBefore = counters.Bytes;
            long dropsBefore = counters.Drops;
            long rsBefore = counters.DropsFor(DropReason.UnsupportedProtocol);

            byte[] payload = new byte[max];
            long payloadBytes = 0;
            for (int sent = 0; sent < Count;)
            {
                int burst = Math.Min(TunTraffic.Burst, Count - sent);
                for (int i = 0; i < burst; i++)
                {
                    int seq = sent + i;
                    Span<byte> p = payload.AsSpan(0, SizeOf(seq));
                    FrameBuilder.FillPayload(p, (ulong)seq);
                    sender.Send(p);
                    payloadBytes += p.Length;
                }

                sent += burst;
                TunTraffic.WaitSeen(nic, seenBefore + sent);
                drain.DrainOnce();
            }

            drain.DrainUntil(Count);
            TunTraffic.WaitSettled(nic);
            drain.DrainOnce();
            TunCounters delta = nic.ReadKernelCounters().Since(before);
            long delivered = counters.Packets - deliveredBefore;
            long drops = counters.Drops - dropsBefore;
            long rs = counters.DropsFor(DropReason.UnsupportedProtocol) - rsBefore;
            output.WriteLine($"{(ipv6 ? "IPv6" : "IPv4")}: delivered {delivered}, verified {drain.Verified} ({drain.DmabufRecords} dmabuf records), drops {drops} ({string.Join(", ", counters.DropsByReason())}), kernel {delta}");

            Assert.True(drain.Errors.Count == 0, string.Join("; ", drain.Errors));
            Assert.Equal(0, drain.Mismatches);
            Assert.Equal(delivered, drain.Verified);
            Assert.Equal(0, drain.LinearRecords);
            Assert.Equal((ulong)(delivered + drops), delta.TxPackets);

            // Pacing keeps the TUN's ring from overflowing; the only other packets are the
            // kernel's router solicitations (ICMPv6), counted as UnsupportedProtocol.
            Assert.Equal(drops, rs);
            Assert.Equal(0UL, delta.TxDropped);
            Assert.Equal(Count, delivered);
            Assert.Equal(payloadBytes, counters.Bytes - bytesBefore);
        }
        finally
        {
            handle?.Dispose();
            nic.Dispose();
        }

        TunTraffic.AssertTornDown(pools, handle is null ? [] : [handle], arena);
    }

    [Fact]
    public void Binding_and_unbinding_while_traffic_flows_loses_nothing_and_both_memories_carry_exact_bytes()
    {
        Requires.NetNamespaces();

        const int Count = 30_000;
        const ushort Port = 7300;
        static int SizeOf(int seq) => TunTraffic.SizeOf(seq, MaxV4Payload);

        using var ns = NetNamespace.Create();
        using var arena = new PageArena(64 << 20);
        using var region = DmabufRegion.CreateMemfd("tun-rebind", 64 << 20);
        var nic = new TunNic(ns, new TunNicOptions { Arena = arena });
        HashSet<PagePool> pools = [];
        List<DmabufBindingHandle> handles = [];
        try
        {
            pools.UnionWith(nic.Device.PagePools);
            DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port), maxOutstanding: 8192);
            using var sender = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv4, Port), Count);
            var drain = new VerifyingDrain(socket, region, Count, SizeOf);
            Netmem.Drivers.Common.RxCounters counters = nic.QueueCounters(0);

            TunCounters before = TunTraffic.SettledCounters(nic);
            long seenBefore = nic.PacketsSeen;
            long deliveredBefore = counters.Packets;
            long dropsBefore = counters.Drops;
            long rsBefore = counters.DropsFor(DropReason.UnsupportedProtocol);

            Exception? senderFailure = null;
            int senderDone = 0;
            var senderThread = new Thread(() =>
            {
                try
                {
                    byte[] payload = new byte[MaxV4Payload];
                    for (int sent = 0; sent < Count;)
                    {
                        int burst = Math.Min(100, Count - sent);
                        for (int i = 0; i < burst; i++)
                        {
                            Span<byte> p = payload.AsSpan(0, SizeOf(sent + i));
                            FrameBuilder.FillPayload(p, (ulong)(sent + i));
                            sender.Send(p);
                        }

                        sent += burst;
                        if (!TunTraffic.WaitSeen(nic, seenBefore + sent, 10_000))
                        {
                            throw new TimeoutException($"the driver read {nic.PacketsSeen - seenBefore} of {sent} sent");
                        }

                        // Pace on the consumer too: while the main thread is busy binding, the
                        // socket must not reach its outstanding bound (that would be a
                        // SocketBackpressure drop, counted but not what this test is about).
                        var wait = System.Diagnostics.Stopwatch.StartNew();
                        while (socket.QueuedFragments > 2048 && wait.ElapsedMilliseconds < 10_000)
                        {
                            Thread.Sleep(1);
                        }
                    }
                }
#pragma warning disable CA1031 // Reported on the test thread.
                catch (Exception e)
#pragma warning restore CA1031
                {
                    senderFailure = e;
                }
                finally
                {
                    Volatile.Write(ref senderDone, 1);
                }
            })
            { IsBackground = true, Name = "tun-rebind-sender" };
            senderThread.Start();

            // Each phase lasts until a datagram has arrived in that phase's memory (or the
            // sender is done): bound, a Dmabuf record; unbound, a linear record.
            int cycles = 0;
            while (Volatile.Read(ref senderDone) == 0 && cycles < 200)
            {
                DmabufBindingHandle h = nic.Device.BindDmabuf(region, [0]);
                handles.Add(h);
                pools.UnionWith(nic.Device.PagePools);
                long dmabufBefore = drain.DmabufRecords;
                DrainWhile(drain, () => drain.DmabufRecords == dmabufBefore && Volatile.Read(ref senderDone) == 0);
                h.Dispose();
                pools.UnionWith(nic.Device.PagePools);
                long linearBefore = drain.LinearRecords;
                DrainWhile(drain, () => drain.LinearRecords == linearBefore && Volatile.Read(ref senderDone) == 0);
                cycles++;
            }

            Assert.True(senderThread.Join(TimeSpan.FromSeconds(30)), "sender did not finish");
            Assert.Null(senderFailure);
            drain.DrainUntil(Count);
            TunTraffic.WaitSettled(nic);
            drain.DrainOnce();
            TunCounters delta = nic.ReadKernelCounters().Since(before);
            long delivered = counters.Packets - deliveredBefore;
            long drops = counters.Drops - dropsBefore;
            long rs = counters.DropsFor(DropReason.UnsupportedProtocol) - rsBefore;
            output.WriteLine($"{cycles} bind/unbind cycles; delivered {delivered}, verified {drain.Verified} ({drain.DmabufRecords} dmabuf, {drain.LinearRecords} linear records), drops {drops} ({string.Join(", ", counters.DropsByReason())}), kernel {delta}");

            Assert.True(cycles >= 2, $"only {cycles} bind/unbind cycles overlapped the traffic");
            Assert.True(drain.Errors.Count == 0, string.Join("; ", drain.Errors));
            Assert.Equal(delivered, drain.Verified);
            Assert.True(drain.DmabufRecords > 0, "no datagram arrived while bound");
            Assert.True(drain.LinearRecords > 0, "no datagram arrived on system pages");
            Assert.Equal((ulong)(delivered + drops), delta.TxPackets);
            Assert.Equal(Count, delivered + (drops - rs) + (long)delta.TxDropped);
            Assert.Equal(Count, delivered);
        }
        finally
        {
            foreach (DmabufBindingHandle h in handles)
            {
                h.Dispose();
            }

            nic.Dispose();
        }

        TunTraffic.AssertTornDown(pools, handles, arena);

        // Drains while the condition holds, bounded so a stalled sender fails the test instead of hanging it.
        static void DrainWhile(VerifyingDrain d, Func<bool> condition)
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            while (condition())
            {
                Assert.True(sw.ElapsedMilliseconds < 10_000, "no datagram arrived in this phase within 10 s");
                if (d.DrainOnce() == 0)
                {
                    d.WaitReadable(1);
                }
            }
        }
    }

    [Fact]
    public void Icmp_echo_requests_the_kernel_routes_into_the_tun_are_counted_as_unsupported_protocol_and_recycled()
    {
        Requires.NetNamespaces();

        const int Pings = 5;
        using var ns = NetNamespace.Create();
        using var arena = new PageArena(64 << 20);
        using var region = DmabufRegion.CreateMemfd("tun-icmp", 4 << 20);

        // A silent device (no IPv6 link-local, so no router solicitations): every packet is ours.
        var nic = new TunNic(ns, new TunNicOptions { Arena = arena, Configuration = new TunConfiguration { IPv6LinkLocal = false } });
        DmabufBindingHandle? handle = null;
        List<PagePool> pools = [];
        try
        {
            handle = nic.Device.BindDmabuf(region, [0]);
            pools.AddRange(nic.Device.PagePools);
            Netmem.Drivers.Common.RxCounters counters = nic.QueueCounters(0);
            TunCounters before = TunTraffic.SettledCounters(nic);
            long seenBefore = nic.PacketsSeen;
            long unsupportedBefore = counters.DropsFor(DropReason.UnsupportedProtocol);

            using Socket icmp = ns.Run(() => new Socket(AddressFamily.InterNetwork, SocketType.Raw, ProtocolType.Icmp));
            byte[] echo = new byte[8 + 32];
            for (int i = 0; i < Pings; i++)
            {
                BuildEchoRequest(echo, id: 0x4e4d, seq: (ushort)i);
                icmp.SendTo(echo, new IPEndPoint(TunDevice.PeerIPv4, 0));
            }

            Assert.True(TunTraffic.WaitSeen(nic, seenBefore + Pings), $"the driver read {nic.PacketsSeen - seenBefore} of {Pings} echo requests");
            TunTraffic.WaitSettled(nic);
            TunCounters delta = nic.ReadKernelCounters().Since(before);
            output.WriteLine($"drops {string.Join(", ", counters.DropsByReason())}, kernel {delta}");

            Assert.Equal(Pings, counters.DropsFor(DropReason.UnsupportedProtocol) - unsupportedBefore);
            Assert.Equal((ulong)Pings, delta.TxPackets);
            Assert.Equal((ulong)(Pings * (20 + echo.Length)), delta.TxBytes);
            Assert.Equal(0, counters.Packets);
        }
        finally
        {
            handle?.Dispose();
            nic.Dispose();
        }

        TunTraffic.AssertTornDown(pools, handle is null ? [] : [handle], arena);
    }

    [Fact]
    public void Router_solicitations_after_a_link_flap_are_counted_as_unsupported_protocol_and_match_the_kernel()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using var arena = new PageArena(64 << 20);
        using var region = DmabufRegion.CreateMemfd("tun-rs", 4 << 20);
        var nic = new TunNic(ns, new TunNicOptions { Arena = arena });
        DmabufBindingHandle? handle = null;
        List<PagePool> pools = [];
        try
        {
            handle = nic.Device.BindDmabuf(region, [0]);
            pools.AddRange(nic.Device.PagePools);
            Netmem.Drivers.Common.RxCounters counters = nic.QueueCounters(0);
            TunCounters before = TunTraffic.SettledCounters(nic);
            long seenBefore = nic.PacketsSeen;
            long unsupportedBefore = counters.DropsFor(DropReason.UnsupportedProtocol);

            using (RtNetlink rtnl = ns.OpenRtNetlink())
            {
                rtnl.SetLink(nic.Tun.Name, up: false);
                rtnl.SetLink(nic.Tun.Name, up: true);
            }

            Assert.True(TunTraffic.WaitSeen(nic, seenBefore + 1, 6000), "no router solicitation within 6 s of link-up");
            TunTraffic.WaitSettled(nic);
            TunCounters delta = nic.ReadKernelCounters().Since(before);
            long unsupported = counters.DropsFor(DropReason.UnsupportedProtocol) - unsupportedBefore;
            output.WriteLine($"router solicitations {unsupported}, drops {string.Join(", ", counters.DropsByReason())}, kernel {delta}");

            Assert.True(unsupported >= 1);
            Assert.Equal((ulong)(nic.PacketsSeen - seenBefore), delta.TxPackets);
            Assert.Equal((ulong)unsupported, delta.TxPackets);
        }
        finally
        {
            handle?.Dispose();
            nic.Dispose();
        }

        TunTraffic.AssertTornDown(pools, handle is null ? [] : [handle], arena);
    }

    [Fact]
    public void Fragments_empty_datagrams_and_datagrams_without_a_socket_are_counted_by_reason_and_nothing_leaks()
    {
        Requires.NetNamespaces();

        const ushort Port = 7200;
        const int Each = 10;
        using var ns = NetNamespace.Create();
        using var arena = new PageArena(64 << 20);
        using var region = DmabufRegion.CreateMemfd("tun-odd", 4 << 20);
        var nic = new TunNic(ns, new TunNicOptions { Arena = arena, Configuration = new TunConfiguration { IPv6LinkLocal = false } });
        DmabufBindingHandle? handle = null;
        List<PagePool> pools = [];
        try
        {
            handle = nic.Device.BindDmabuf(region, [0]);
            pools.AddRange(nic.Device.PagePools);
            DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port));
            Netmem.Drivers.Common.RxCounters counters = nic.QueueCounters(0);
            TunCounters before = TunTraffic.SettledCounters(nic);
            long seenBefore = nic.PacketsSeen;

            // IP_MTU_DISCOVER = IP_PMTUDISC_DONT: DF clear, so the kernel fragments what exceeds the MTU.
            using Socket v4 = TunTraffic.OpenUdp(ns, new IPEndPoint(TunDevice.PeerIPv4, Port), s => s.SetRawSocketOption(0, 10, BitConverter.GetBytes(0)));
            using Socket v6 = TunTraffic.OpenUdp(ns, new IPEndPoint(TunDevice.PeerIPv6, Port));
            using Socket unbound = TunTraffic.OpenUdp(ns, new IPEndPoint(TunDevice.PeerIPv4, Port + 1));
            byte[] big = new byte[3000];
            byte[] small = new byte[100];
            var drain = new VerifyingDrain(socket, region, 2 * Each, seq => seq < Each ? big.Length : small.Length);
            for (int i = 0; i < Each; i++)
            {
                FrameBuilder.FillPayload(big, (ulong)i);
                Assert.Equal(big.Length, v4.Send(big));
                Assert.Equal(big.Length, v6.Send(big));
                Assert.Equal(0, v4.Send(ReadOnlySpan<byte>.Empty));
                Assert.Equal(small.Length, unbound.Send(small));
                FrameBuilder.FillPayload(small, (ulong)(Each + i));
                Assert.Equal(small.Length, v4.Send(small));
            }

            // 3000 B + 8 B UDP over a 1500 MTU: three fragments per datagram in either family.
            const int Fragments = Each * (3 + 3);
            const int Expected = Fragments + (3 * Each);
            Assert.True(TunTraffic.WaitSeen(nic, seenBefore + Expected), $"the driver read {nic.PacketsSeen - seenBefore} of {Expected}");
            TunTraffic.WaitSettled(nic);
            drain.DrainUntil(Each);
            TunCounters delta = nic.ReadKernelCounters().Since(before);
            output.WriteLine($"delivered {counters.Packets}, drops {string.Join(", ", counters.DropsByReason())}, kernel {delta}");

            Assert.Equal(Fragments, counters.DropsFor(DropReason.Fragment));
            Assert.Equal(Each, counters.DropsFor(DropReason.ZeroPayload));
            Assert.Equal(Each, counters.DropsFor(DropReason.NoSocket));
            Assert.Equal(Each, counters.Packets);
            Assert.Equal(Each, drain.Verified);
            Assert.True(drain.Errors.Count == 0, string.Join("; ", drain.Errors));
            Assert.Equal((ulong)Expected, delta.TxPackets);
            Assert.Equal((ulong)(counters.Packets + counters.Drops), delta.TxPackets);
        }
        finally
        {
            handle?.Dispose();
            nic.Dispose();
        }

        TunTraffic.AssertTornDown(pools, handle is null ? [] : [handle], arena);
    }

    [Fact]
    public void Disposing_right_after_an_unbind_restart_tears_the_queue_down_completely()
    {
        Requires.NetNamespaces();

        // Regression: Start then Stop in quick succession used to leave the loop parked without
        // saying so, and Stop threw EBUSY after 30 s. Each round now tears down completely:
        // binding freed, every pool the queue ran on freed.
        using var ns = NetNamespace.Create();
        using var region = DmabufRegion.CreateMemfd("tun-restart", 4 << 20);
        for (int i = 0; i < 10; i++)
        {
            var nic = new TunNic(ns, new TunNicOptions { Configuration = new TunConfiguration { IPv6LinkLocal = false } });
            HashSet<PagePool> pools = [.. nic.Device.PagePools];
            DmabufBindingHandle handle = nic.Device.BindDmabuf(region, [0]);
            pools.UnionWith(nic.Device.PagePools);
            handle.Dispose();
            pools.UnionWith(nic.Device.PagePools);
            nic.Dispose();

            Assert.True(handle.Binding.IsFreed, $"round {i}: binding not freed");
            Assert.Equal(0, TunTraffic.WaitPoolsFreed(pools));
            Assert.All(pools, p => Assert.True(p.IsFreed, $"round {i}: {p} not freed"));
            Assert.Null(nic.QueueMemory(0));
        }
    }

    [Fact]
    public void A_tun_nic_on_a_name_held_by_a_multi_queue_tun_fails_saying_the_name_is_in_use()
    {
        Requires.NetNamespaces();

        using var ns = NetNamespace.Create();
        using TunDevice existing = TunDevice.Create(ns, "nmmq0", queueCount: 2);
        var e = Assert.Throws<NativeException>(() => new TunNic(ns, new TunNicOptions { Name = "nmmq0" }));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.EINVAL, e.ErrorNumber);
        Assert.Contains("name 'nmmq0' is in use", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(NetDevice.All, d => d.Name == "nmmq0");
    }

    /// <summary>An ICMP echo request (type 8) with its checksum; the kernel adds the IP header.</summary>
    private static void BuildEchoRequest(Span<byte> icmp, ushort id, ushort seq)
    {
        icmp.Clear();
        icmp[0] = 8;
        BinaryPrimitives.WriteUInt16BigEndian(icmp[4..], id);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[6..], seq);
        for (int i = 8; i < icmp.Length; i++)
        {
            icmp[i] = (byte)i;
        }

        uint sum = 0;
        for (int i = 0; i < icmp.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(icmp[i..]);
        }

        while (sum > 0xFFFF)
        {
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], (ushort)~sum);
    }
}
