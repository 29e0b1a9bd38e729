using System.Diagnostics.Tracing;
using System.Net;
using Netmem.Devmem;
using Netmem.Diagnostics;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Diagnostics;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>
/// A fault in TunNic's receive step, with a kernel packet's descriptor in hand, is caught,
/// counted and traced; the descriptor goes back and the next packets are delivered. Needs root.
/// </summary>
[Collection(DiagnosticsCollection.Name)]
public sealed class TunNicPollFaultTests(ITestOutputHelper output)
{
    private const ushort Port = 7810;

    private sealed class InjectedFault() : Exception("injected fault");

    [Fact]
    public void A_fault_on_the_fast_path_drops_that_packet_only_and_the_counts_still_match_the_kernel()
    {
        Requires.NetNamespaces();

        const int Count = 5;
        using var ns = NetNamespace.Create();
        using var arena = new PageArena(64 << 20);
        using var region = DmabufRegion.CreateMemfd("tun-fault", 4 << 20);
        using var listener = new RecordingListener(EventLevel.Error, NetmemEventSource.Keywords.Lifecycle);
        var nic = new TunNic(ns, new TunNicOptions { Arena = arena, Configuration = new TunConfiguration { IPv6LinkLocal = false } });
        DmabufBindingHandle? handle = null;
        List<PagePool> pools = [];
        try
        {
            handle = nic.Device.BindDmabuf(region, [0]);
            pools.AddRange(nic.Device.PagePools);
            DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(Port));
            RxCounters counters = nic.QueueCounters(0);
            TunCounters before = TunTraffic.SettledCounters(nic);
            long seenBefore = nic.PacketsSeen;
            int faultsLeft = 1;
            nic.QueueMemory(0)!.FaultInjection = () =>
            {
                if (Interlocked.Exchange(ref faultsLeft, 0) == 1)
                {
                    throw new InjectedFault();
                }
            };

            using var sender = new NamespaceUdpSender(ns, new IPEndPoint(TunDevice.PeerIPv4, Port), Count);
            byte[] payload = new byte[1000];
            for (int seq = 0; seq < Count; seq++)
            {
                FrameBuilder.FillPayload(payload, (ulong)seq);
                sender.Send(payload);
            }

            Assert.True(TunTraffic.WaitSeen(nic, seenBefore + Count), $"the driver read {nic.PacketsSeen - seenBefore} of {Count}");
            TunCounters delta = TunTraffic.WaitSettled(nic).Since(before);
            var drain = new VerifyingDrain(socket, region, Count, _ => payload.Length);
            drain.DrainUntil(Count - 1);
            output.WriteLine($"delivered {counters.Packets}, drops {string.Join(", ", counters.DropsByReason())}, kernel {delta}");

            Assert.Equal(1, counters.PollExceptions);
            Assert.Equal(new Dictionary<DropReason, long> { [DropReason.PollFault] = 1 }, counters.DropsByReason());
            Assert.Equal(Count - 1, counters.Packets);
            Assert.Equal((ulong)Count, delta.TxPackets);
            Assert.Equal(Count - 1, drain.Verified);
            Assert.True(drain.Errors.Count == 0, string.Join("; ", drain.Errors));
            EventWrittenEventArgs e = Assert.Single(listener.Where(nameof(NetmemEventSource.NapiPollException), "device", nic.Device.Name));
            Assert.Equal(1L, RecordingListener.Field(e, "exceptions"));
            Assert.Equal(typeof(InjectedFault).FullName, RecordingListener.Field(e, "exceptionType"));
        }
        finally
        {
            handle?.Dispose();
            nic.Dispose();
        }

        TunTraffic.AssertTornDown(pools, handle is null ? [] : [handle], arena);
    }
}
