using System.Diagnostics;
using Netmem.Devmem;
using Netmem.Drivers.Xdp;
using Netmem.Native;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>Shared steps of the XdpNic tests: bounded waits on the driver and the kernel counters.</summary>
internal static class XdpTestKit
{
    /// <summary>Mixed sizes from 1 byte to <paramref name="max"/>, the maximum every 97th.</summary>
    internal static int SizeOf(int seq, int max) => seq % 97 == 0 ? max : 1 + (int)((uint)(seq * 7919) % (uint)max);

    /// <summary>Waits until the driver's count stops moving for 50 ms, at most 3 s.</summary>
    internal static void WaitQuiet(XdpNic nic)
    {
        var total = Stopwatch.StartNew();
        var still = Stopwatch.StartNew();
        long last = nic.PacketsSeen;
        while (still.ElapsedMilliseconds < 50 && total.ElapsedMilliseconds < 3000)
        {
            Thread.Sleep(5);
            long now = nic.PacketsSeen;
            if (now != last)
            {
                last = now;
                still.Restart();
            }
        }
    }

    /// <summary>Polls <paramref name="done"/> until it holds or <paramref name="timeoutMs"/> passes.</summary>
    internal static bool WaitUntil(Func<bool> done, int timeoutMs = 5000)
    {
        var sw = Stopwatch.StartNew();
        while (!done())
        {
            if (sw.ElapsedMilliseconds > timeoutMs)
            {
                return false;
            }

            Thread.Sleep(1);
        }

        return true;
    }

    /// <summary>Frames the peer sent, the driver took, and the socket lost, since the baselines.</summary>
    internal static (ulong PeerTx, long Seen, ulong XskLost) Since(VethPair veth, XdpNic nic, LinkStats64 peerBefore, long seenBefore, XskStatistics xskBefore) =>
        (veth.ReadPeerCounters().TxPackets - peerBefore.TxPackets, nic.PacketsSeen - seenBefore, nic.ReadXskStatistics(0).RxLost - xskBefore.RxLost);

    /// <summary>
    /// Attaches an XdpNic to the veth's device end and binds <paramref name="region"/> to its
    /// queue 0; the pools are those of the bound queue, to check after teardown.
    /// </summary>
    internal static (XdpNic Nic, DmabufBindingHandle Handle, List<PagePool> Pools) AttachBound(VethPair veth, DmabufRegion region)
    {
        var nic = new XdpNic(veth.DeviceNamespace, veth.Name);
        try
        {
            DmabufBindingHandle handle = nic.Device.BindDmabuf(region, [0]);
            return (nic, handle, [.. nic.Device.PagePools]);
        }
        catch
        {
            nic.Dispose();
            throw;
        }
    }

    /// <summary>After unbind and teardown: no page of <paramref name="pools"/> in flight, the binding freed and its genpool whole.</summary>
    internal static void AssertTornDown(List<PagePool> pools, DmabufBinding binding)
    {
        Assert.True(WaitUntil(() => pools.All(p => p.Inflight == 0)), string.Join(", ", pools.Select(p => $"{p.Name} inflight {p.Inflight}")));
        Assert.True(binding.IsFreed);
        Assert.Equal(binding.Size, binding.Avail);
        Assert.Equal(0, binding.OutstandingNetIovs);
    }
}
