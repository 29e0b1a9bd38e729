using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Xunit;

namespace Netmem.Tests.Drivers;

/// <summary>Helpers shared by the SimNic tests: frames, bounded injection, draining sockets, pool accounting.</summary>
internal static class SimNicTestKit
{
    public static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(20);

    /// <summary>A UDP/IPv4 frame to <paramref name="port"/> carrying a self-verifying payload with <paramref name="seq"/>.</summary>
    public static int UdpFrame(byte[] frame, ulong seq, int payloadLength, ushort port, bool ipv6 = false, ushort vlan = 0)
    {
        byte[] buf = new byte[payloadLength];
        FrameBuilder.FillPayload(buf, seq);
        return FrameBuilder.BuildUdp(frame, ipv6, 0x0A000001, 0x0A000002, 4321, port, buf, vlan);
    }

    /// <summary>Injects, retrying while the FIFO is full, for at most <see cref="WaitLimit"/>. Returns the FIFO-full rejections.</summary>
    public static int InjectBounded(SimNic nic, int queue, ReadOnlySpan<byte> frame)
    {
        int rejected = 0;
        DateTime end = DateTime.UtcNow + WaitLimit;
        while (!nic.Inject(queue, frame))
        {
            rejected++;
            Assert.True(DateTime.UtcNow < end, "the FIFO stayed full");
            Thread.Yield();
        }

        return rejected;
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; false after <see cref="WaitLimit"/>. Safe on any thread (never asserts).</summary>
    public static bool TryWaitUntil(Func<bool> condition)
    {
        DateTime end = DateTime.UtcNow + WaitLimit;
        SpinWait spin = default;
        while (!condition())
        {
            if (DateTime.UtcNow >= end)
            {
                return false;
            }

            spin.SpinOnce(sleep1Threshold: 20);
        }

        return true;
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; fails the test with <paramref name="what"/> after <see cref="WaitLimit"/>.</summary>
    public static void WaitUntil(Func<bool> condition, string what) => Assert.True(TryWaitUntil(condition), what);

    public static void WaitIdle(SimNic nic) => Assert.True(nic.WaitIdle(WaitLimit), "the NIC did not go idle");

    /// <summary>
    /// Receives everything queued on <paramref name="socket"/>, checks every Dmabuf fragment is
    /// readable through <paramref name="region"/> and verifies, hands the tokens back, and returns
    /// the datagrams (EndOfPacket records) received. A null region means: the one each record's binding maps.
    /// </summary>
    public static int Drain(DevmemSocket socket, DmabufRegion? region, List<ulong>? seqs = null)
    {
        var cmsgs = new DmabufCmsg[64];
        byte[] linear = new byte[64 * 1024];
        uint[] tokens = new uint[64];
        byte[] datagram = new byte[64 * 1024];
        int datagramLength = 0;
        int packets = 0;
        while (true)
        {
            int n = socket.Receive(cmsgs, linear, out _);
            if (n == 0)
            {
                return packets;
            }

            int t = 0;
            for (int i = 0; i < n; i++)
            {
                ref DmabufCmsg c = ref cmsgs[i];
                // Without a region, find it through the record's binding (alive while its token is held).
                ReadOnlySpan<byte> bytes = c.Type == DevmemCmsgType.Dmabuf
                    ? (region ?? DmabufBinding.FromId((int)c.DmabufId)!.Region).GetSpan((long)c.FragOffset, (int)c.FragSize)
                    : linear.AsSpan(c.LinearOffset, (int)c.FragSize);
                bytes.CopyTo(datagram.AsSpan(datagramLength));
                datagramLength += bytes.Length;
                if (c.Type == DevmemCmsgType.Dmabuf)
                {
                    tokens[t++] = c.FragToken;
                }

                if (c.IsEndOfPacket)
                {
                    Assert.True(FrameBuilder.VerifyPayload(datagram.AsSpan(0, datagramLength), out ulong seq), "payload does not verify");
                    seqs?.Add(seq);
                    datagramLength = 0;
                    packets++;
                }
            }

            Assert.Equal(t, socket.DontNeed(tokens.AsSpan(0, t)));
        }
    }

    /// <summary>Every frame injected is delivered or counted as a drop: packets + drops over all queues.</summary>
    public static long Accounted(SimNic nic)
    {
        long sum = 0;
        for (int q = 0; q < nic.Options.RxQueues; q++)
        {
            RxCounters c = nic.QueueCounters(q);
            sum += c.Packets + c.Drops;
        }

        return sum;
    }
}

/// <summary>Remembers every page pool a SimNic ran on, so inflight can be checked after teardown.</summary>
internal sealed class PoolTracker
{
    private readonly HashSet<PagePool> _pools = [];

    public IReadOnlyCollection<PagePool> Pools => _pools;

    /// <summary>Records the pools the NIC's queues run on now (call after each bind, unbind or restart).</summary>
    public void Capture(SimNic nic)
    {
        for (int q = 0; q < nic.Options.RxQueues; q++)
        {
            if (nic.QueueMemory(q) is { } mem)
            {
                _pools.Add(mem.HeaderPool);
                _pools.Add(mem.PayloadPool);
            }
        }

        foreach (PagePool p in PagePool.All)
        {
            if (ReferenceEquals(p.Params.Queue?.Device, nic.Device))
            {
                _pools.Add(p);
            }
        }
    }

    /// <summary>After the NIC's teardown: every pool destroyed, nothing in flight, every pool freed.</summary>
    public void AssertAllReturned()
    {
        Assert.NotEmpty(_pools);
        foreach (PagePool p in _pools)
        {
            Assert.True(p.IsDestroyed, $"{p} was not destroyed");
            Assert.Equal(0, p.Inflight);
            Assert.True(p.IsFreed, $"{p} is still lingering");
        }
    }
}
