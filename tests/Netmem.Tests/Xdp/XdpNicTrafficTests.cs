using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Drivers.Xdp;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>XdpNic on a veth pair: real kernel traffic from a peer namespace into the bound region.</summary>
public sealed class XdpNicTrafficTests(ITestOutputHelper output)
{
    [Fact]
    public void Hundred_thousand_mixed_ipv4_and_ipv6_datagrams_arrive_in_the_region_and_every_frame_is_counted_by_the_kernel()
    {
        Requires.AfXdp();

        const int PerFamily = 50_000;
        const int Burst = 256;
        using var veth = VethPair.Create();
        using var region = DmabufRegion.CreateMemfd("xdp-mixed", 32 << 20);
        using var nic = new XdpNic(veth.DeviceNamespace, veth.Name);
        using DmabufBindingHandle handle = nic.Device.BindDmabuf(region, [0]);
        using DevmemSocket s4 = nic.OpenSocket(FlowKey.Udp(9301));
        using DevmemSocket s6 = nic.OpenSocket(FlowKey.Udp(9302));
        using NamespaceUdpSender tx4 = veth.OpenSender(9301);
        using NamespaceUdpSender tx6 = veth.OpenSender(9302, ipv6: true);
        var r4 = new XdpFlowReader(s4, seq => XdpTestKit.SizeOf(seq, 1472));
        var r6 = new XdpFlowReader(s6, seq => XdpTestKit.SizeOf(seq, 1452));
        XdpTestKit.WaitQuiet(nic);
        LinkStats64 peerBefore = veth.ReadPeerCounters();
        long seenBefore = nic.PacketsSeen;
        XskStatistics xskBefore = nic.ReadXskStatistics(0);

        for (int sent = 0; sent < PerFamily; sent += Burst)
        {
            int n = Math.Min(Burst, PerFamily - sent);
            tx4.SendPattern(sent, n, seq => XdpTestKit.SizeOf(seq, 1472));
            tx6.SendPattern(sent, n, seq => XdpTestKit.SizeOf(seq, 1452));
            Assert.True(r4.ReceiveUntil(sent + n) && r6.ReceiveUntil(sent + n), $"stalled at {sent}: v4 {r4.Received} v6 {r6.Received}, drops {string.Join(", ", nic.QueueCounters(0).DropsByReason())}, xsk {nic.ReadXskStatistics(0)}");
        }

        XdpTestKit.WaitQuiet(nic);
        (ulong peerTx, long seen, ulong lost) = XdpTestKit.Since(veth, nic, peerBefore, seenBefore, xskBefore);
        output.WriteLine($"{nic}: {nic.QueueMode(0)}; peer tx {peerTx}, driver took {seen}, xsk lost {lost}, drops {string.Join(", ", nic.QueueCounters(0).DropsByReason())}");
        Assert.Empty(r4.Failures);
        Assert.Empty(r6.Failures);
        Assert.Equal(PerFamily, r4.FromRegion);
        Assert.Equal(PerFamily, r6.FromRegion);
        Assert.Equal(peerTx, (ulong)seen + lost);
        Assert.Equal(0, nic.QueueCounters(0).PollExceptions);
    }

    [Fact]
    public void A_queue_that_is_not_bound_delivers_datagrams_as_linear_data()
    {
        Requires.AfXdp();

        using var veth = VethPair.Create();
        using var nic = new XdpNic(veth.DeviceNamespace, veth.Name);
        using DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(9303));
        using NamespaceUdpSender tx = veth.OpenSender(9303);
        var reader = new XdpFlowReader(socket, seq => XdpTestKit.SizeOf(seq, 1472));

        tx.SendPattern(0, 500, seq => XdpTestKit.SizeOf(seq, 1472));

        Assert.True(reader.ReceiveUntil(500));
        Assert.Empty(reader.Failures);
        Assert.Equal(500, reader.Linear);
        Assert.Equal(0, reader.FromRegion);
        Assert.False(nic.QueueMemory(0)!.IsBound);
    }

    [Fact]
    public void Binding_and_unbinding_under_traffic_loses_nothing_frames_in_the_restart_window_reach_the_kernel_stack()
    {
        Requires.AfXdp();

        const int Count = 20_000;
        using var veth = VethPair.Create();
        using var region = DmabufRegion.CreateMemfd("xdp-rebind", 32 << 20);
        using var nic = new XdpNic(veth.DeviceNamespace, veth.Name);
        using DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(9304));
        // While a queue restarts no AF_XDP socket is in the map and the program passes frames to
        // the stack: a plain socket on the same port in the device namespace takes them.
        using Socket stack = veth.DeviceNamespace.Run(() =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveBufferSize = 8 << 20 };
            s.Bind(new IPEndPoint(IPAddress.Any, 9304));
            return s;
        });
        using NamespaceUdpSender tx = veth.OpenSender(9304, maxDatagrams: Count);
        bool[] seen = new bool[Count];
        var reader = new XdpFlowReader(socket, sizeOf: null, seen);
        int stackReceived = 0;
        int duplicates = 0;
        int sent = 0;
        var sender = new Thread(() =>
        {
            byte[] payload = new byte[512];
            for (; sent < Count; sent++)
            {
                FrameBuilder.FillSequencePayload(payload, (ulong)sent);
                tx.Send(payload);
                if (sent % 64 == 63)
                {
                    // Pace on what the driver took so the rings never overflow.
                    XdpTestKit.WaitUntil(() => reader.Received + Volatile.Read(ref stackReceived) >= sent - 512, 5000);
                }
            }
        });
        var stackReader = new Thread(() =>
        {
            byte[] buf = new byte[2048];
            stack.ReceiveTimeout = 200;
            while (Volatile.Read(ref sent) < Count || stack.Available > 0)
            {
                try
                {
                    int n = stack.Receive(buf);
                    if (FrameBuilder.VerifySequencePayload(buf.AsSpan(0, n), out ulong s) && s < Count)
                    {
                        if (seen[s])
                        {
                            Interlocked.Increment(ref duplicates);
                        }

                        seen[s] = true;
                    }

                    Interlocked.Increment(ref stackReceived);
                }
                catch (SocketException)
                {
                    // Receive timeout: look at the sender again.
                }
                catch (ObjectDisposedException)
                {
                    return;
                }
            }
        });
        sender.Start();
        stackReader.Start();
        int cycles = 0;
        int waitedForUnbind = 0;
        var done = System.Diagnostics.Stopwatch.StartNew();
        while (Volatile.Read(ref sent) < Count && cycles < 6)
        {
            DmabufBinding previous;
            using (DmabufBindingHandle h = nic.Device.BindDmabuf(region, [0]))
            {
                previous = h.Binding;
                reader.ReceiveUntil(reader.Received + 500, 500);
            }

            reader.ReceiveUntil(reader.Received + 500, 500);

            // Datagrams delivered before the unbind (those the stop drained from the rx ring
            // among them) can still wait in the socket, their payloads in the region under the
            // old binding, which lives until the last is read. Binding the region again before
            // then hands the same memory to the kernel a second time (two bindings of one
            // dma-buf alias, as in the kernel): a new frame would overwrite a datagram not read
            // yet, and the reader would see the new frame's sequence twice. Read them first.
            var unbound = System.Diagnostics.Stopwatch.StartNew();
            waitedForUnbind += previous.IsFreed ? 0 : 1;
            while (!previous.IsFreed && unbound.Elapsed < TimeSpan.FromSeconds(10))
            {
                reader.ReceiveUntil(reader.Received + 1, 20);
            }

            Assert.True(previous.IsFreed, $"binding {previous.Id} still has datagrams out 10 s after the unbind");
            cycles++;
        }

        // Keep receiving while the sender finishes: it paces on what this thread takes.
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        bool senderDone;
        while (!(senderDone = sender.Join(0)) && deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            reader.ReceiveUntil(reader.Received + 1, 100);
        }

        reader.ReceiveUntil(Count - Volatile.Read(ref stackReceived), 3000);
        output.WriteLine($"sender done {senderDone} at {Volatile.Read(ref sent)}; devmem {reader.Received}, stack {stackReceived}, driver took {nic.PacketsSeen}, xsk {nic.ReadXskStatistics(0)}, peer {veth.ReadPeerCounters()}, device {veth.ReadDeviceCounters()}");
        Assert.True(senderDone, "the sender stalled");
        stackReader.Join();
        output.WriteLine($"cycles {cycles} ({waitedForUnbind} waited for datagrams of the previous binding); devmem {reader.Received} (region {reader.FromRegion}, linear {reader.Linear}), stack {stackReceived}, xsk {nic.ReadXskStatistics(0)}, drops {string.Join(", ", nic.QueueCounters(0).DropsByReason())}");
        Assert.Empty(reader.Failures);
        Assert.Equal(0, duplicates);
        Assert.True(cycles >= 1);
        Assert.Equal(Count, reader.Received + stackReceived);
        Assert.All(seen, Assert.True);
        Assert.True(reader.FromRegion > 0);
        Assert.True(reader.Linear > 0);
    }

    [Fact]
    public void Datagrams_queued_when_the_region_is_unbound_keep_their_bytes_and_their_binding_until_they_are_read()
    {
        Requires.AfXdp();

        const int Half = 100;
        using var veth = VethPair.Create();
        using var region = DmabufRegion.CreateMemfd("xdp-unbind-queued", 8 << 20);
        using var nic = new XdpNic(veth.DeviceNamespace, veth.Name);
        using DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(9307), maxOutstanding: 4096);
        using NamespaceUdpSender tx = veth.OpenSender(9307, maxDatagrams: 2 * Half);
        bool[] seen = new bool[2 * Half];
        var reader = new XdpFlowReader(socket, sizeOf: null, seen);
        byte[] payload = new byte[512];
        DmabufBindingHandle handle = nic.Device.BindDmabuf(region, [0]);
        DmabufBinding binding = handle.Binding;
        XdpTestKit.WaitQuiet(nic);
        for (int i = 0; i < Half; i++)
        {
            FrameBuilder.FillSequencePayload(payload, (ulong)i);
            tx.Send(payload);
        }

        // Delivered to the socket, not read: the payloads stay in the region under the binding's tokens.
        Assert.True(XdpTestKit.WaitUntil(() => nic.QueueCounters(0).Packets >= Half), $"delivered {nic.QueueCounters(0).Packets} of {Half}");
        handle.Dispose();

        // The unbound queue copies: these arrive as linear data behind the queued ones.
        for (int i = Half; i < 2 * Half; i++)
        {
            FrameBuilder.FillSequencePayload(payload, (ulong)i);
            tx.Send(payload);
        }

        Assert.True(XdpTestKit.WaitUntil(() => nic.QueueCounters(0).Packets >= 2 * Half), $"delivered {nic.QueueCounters(0).Packets} of {2 * Half}");
        Assert.False(binding.IsFreed);
        Assert.Same(binding, DmabufBinding.FromId(binding.Id));

        Assert.True(reader.ReceiveUntil(2 * Half));
        Assert.Empty(reader.Failures);
        Assert.Equal(Half, reader.FromRegion);
        Assert.Equal(Half, reader.Linear);
        Assert.All(seen, Assert.True);
        Assert.True(XdpTestKit.WaitUntil(() => binding.IsFreed), "the unbound binding outlived its last datagram");
        Assert.Null(DmabufBinding.FromId(binding.Id));
    }

    [Fact]
    public void A_region_smaller_than_the_traffic_starves_the_fill_ring_the_kernel_counts_it_and_dontneed_recovers()
    {
        Requires.AfXdp();

        const int Chunks = 256;
        using var veth = VethPair.Create();
        using var region = DmabufRegion.CreateMemfd("xdp-starve", Chunks * DmabufRegion.Granule);
        using var nic = new XdpNic(veth.DeviceNamespace, veth.Name);
        using DmabufBindingHandle handle = nic.Device.BindDmabuf(region, [0]);
        using DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(9305), maxOutstanding: 4096);
        using NamespaceUdpSender tx = veth.OpenSender(9305);
        var reader = new XdpFlowReader(socket, seq => 100) { Hold = true };
        XdpTestKit.WaitQuiet(nic);

        // The queue keeps a few chunks off the fill ring for transmit headers; the rest receive.
        int rxChunks = Chunks - nic.QueueTxChunksHeld(0);
        Assert.InRange(rxChunks, Chunks - 4, Chunks - 1);
        XskStatistics before = nic.ReadXskStatistics(0);
        LinkStats64 peerBefore = veth.ReadPeerCounters();
        long seenBefore = nic.PacketsSeen;

        tx.SendPattern(0, 400, seq => 100);
        Assert.False(reader.ReceiveUntil(401, 500));
        XdpTestKit.WaitQuiet(nic);
        XskStatistics starved = nic.ReadXskStatistics(0);
        output.WriteLine($"held {reader.HeldTokens}, received {reader.Received}, xsk {starved}");

        Assert.Equal(rxChunks, reader.Received);
        Assert.Equal(rxChunks, reader.HeldTokens);
        // Every frame the peer sent that the driver did not take was dropped for want of a chunk
        // (the 400 datagrams less the chunks that receive, plus any frame of the peer's own kernel).
        (ulong peerTx, long seen, _) = XdpTestKit.Since(veth, nic, peerBefore, seenBefore, before);
        Assert.True(peerTx >= 400);
        Assert.Equal(peerTx - (ulong)seen, starved.RxDropped - before.RxDropped);
        Assert.Equal(starved.RxDropped - before.RxDropped, starved.RxFillRingEmptyDescs - before.RxFillRingEmptyDescs);

        Assert.Equal(rxChunks, reader.ReturnHeld());
        reader.Hold = false;
        Assert.True(XdpTestKit.WaitUntil(() => nic.QueueMemory(0)!.PostedNetIovs == rxChunks), $"fill ring holds {nic.QueueMemory(0)!.PostedNetIovs} of {rxChunks} chunks after DONTNEED");
        int receivedBefore = reader.Received;
        tx.SendPattern(0, 100, seq => 100);

        Assert.True(reader.ReceiveUntil(receivedBefore + 100));
        Assert.Equal(starved.RxDropped, nic.ReadXskStatistics(0).RxDropped);
    }

    [Fact]
    public void Teardown_with_traffic_in_flight_leaves_no_pool_inflight_and_the_genpool_whole()
    {
        Requires.AfXdp();

        using var veth = VethPair.Create();
        using var bound = new XdpBoundNic(veth, "xdp-teardown", 8 << 20);
        DevmemSocket socket = bound.Nic.OpenSocket(FlowKey.Udp(9306));
        using NamespaceUdpSender tx = veth.OpenSender(9306);
        var reader = new XdpFlowReader(socket, seq => 1000) { Hold = true };
        tx.SendPattern(0, 300, seq => 1000);
        Assert.True(reader.ReceiveUntil(300));
        Assert.Equal(300, reader.HeldTokens);

        bound.TearDownAndAssertNothingLeft();
    }
}
