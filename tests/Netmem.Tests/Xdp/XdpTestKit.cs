using System.Diagnostics;
using Netmem.Drivers.Xdp;
using Netmem.Native;

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
}
