using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;
using Netmem.Native;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>
/// Test-side helpers for TunNic traffic: paced kernel sends, a verifying drain of a
/// <see cref="DevmemSocket"/>, and the teardown checks every test shares.
/// </summary>
internal static class TunTraffic
{
    /// <summary>Datagrams per burst: well under the TUN ring (txqueuelen 1000), leaving room for kernel chatter.</summary>
    internal const int Burst = 200;

    /// <summary>UDP payload sizes 1..<paramref name="max"/>, deterministic per sequence; every 97th is the maximum.</summary>
    internal static int SizeOf(int seq, int max) => seq % 97 == 0 ? max : 1 + (int)((uint)(seq * 7919) % (uint)max);

    /// <summary>
    /// Waits until the driver has read at least <paramref name="target"/> packets (delivered plus
    /// dropped), so the next burst cannot overflow the TUN's queue. False after
    /// <paramref name="timeoutMs"/> without reaching it.
    /// </summary>
    internal static bool WaitSeen(TunNic nic, long target, int timeoutMs = 5000)
    {
        var sw = Stopwatch.StartNew();
        SpinWait spin = default;
        while (nic.PacketsSeen < target)
        {
            if (sw.ElapsedMilliseconds > timeoutMs)
            {
                return false;
            }

            spin.SpinOnce(sleep1Threshold: 20);
        }

        return true;
    }

    /// <summary>
    /// Waits until the driver has counted every packet the kernel handed it: the kernel counts a
    /// packet in TxPackets when a read copies it out, the driver once it has delivered or
    /// dropped it, so the two agree exactly when no packet is between the two. Bounded polling;
    /// fails the test after <paramref name="timeoutMs"/>. Packets still queued in the TUN are in
    /// neither count: wait for them with <see cref="WaitSeen"/> first.
    /// </summary>
    internal static TunCounters WaitSettled(TunNic nic, int timeoutMs = 5000)
    {
        var sw = Stopwatch.StartNew();
        SpinWait spin = default;
        while (true)
        {
            long seen = nic.PacketsSeen;
            TunCounters kernel = nic.ReadKernelCounters();
            if (kernel.TxPackets == (ulong)seen && nic.PacketsSeen == seen)
            {
                return kernel;
            }

            Assert.True(sw.ElapsedMilliseconds < timeoutMs, $"the driver counted {seen} packets, the kernel handed out {kernel.TxPackets}");
            spin.SpinOnce(sleep1Threshold: 20);
        }
    }

    /// <summary>A UDP socket inside <paramref name="ns"/> connected to <paramref name="to"/> (in the TUN's subnet).</summary>
    internal static Socket OpenUdp(NetNamespace ns, IPEndPoint to, Action<Socket>? configure = null)
    {
        Assert.True(TunAddressPolicy.IsAllowed(to.Address), $"{to} is outside the test ranges");
        return ns.Run(() =>
        {
            var s = new Socket(to.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            configure?.Invoke(s);
            s.Connect(to);
            return s;
        });
    }

    /// <summary>The TUN's kernel counters at a moment the driver has counted every packet they count (see <see cref="WaitSettled"/>).</summary>
    internal static TunCounters SettledCounters(TunNic nic) => WaitSettled(nic);

    /// <summary>
    /// Waits for every pool to be freed (bounded) and returns the inflight sum still outstanding.
    /// </summary>
    internal static long WaitPoolsFreed(IEnumerable<PagePool> pools, int timeoutMs = 5000)
    {
        PagePool[] all = [.. pools];
        var sw = Stopwatch.StartNew();
        while (all.Any(p => !p.IsFreed) && sw.ElapsedMilliseconds < timeoutMs)
        {
            Thread.Sleep(5);
        }

        return all.Sum(p => p.GetStats().Inflight);
    }

    /// <summary>
    /// Asserts the state after teardown: every captured pool freed with nothing in flight, every
    /// binding freed with its GenPool whole, and the arena's pages all back.
    /// </summary>
    internal static void AssertTornDown(IEnumerable<PagePool> pools, IEnumerable<DmabufBindingHandle> handles, PageArena arena)
    {
        PagePool[] all = [.. pools.Distinct()];
        Assert.NotEmpty(all);
        long inflight = WaitPoolsFreed(all);
        Assert.True(inflight == 0, $"{inflight} netmems in flight after teardown: " + string.Join(", ", all.Where(p => p.Inflight != 0).Select(p => $"{p.Name} {p.Inflight}")));
        Assert.All(all, p => Assert.True(p.IsFreed, $"{p} not freed, inflight {p.Inflight}"));
        foreach (DmabufBindingHandle h in handles)
        {
            Assert.True(h.Binding.IsFreed, $"binding {h.BindingId} not freed ({h.Binding.OutstandingNetIovs} net_iovs outstanding)");
            Assert.Equal(h.Binding.Size, h.Binding.Avail);
        }

        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }
}

/// <summary>
/// Receives from one <see cref="DevmemSocket"/>, reassembles each datagram from its records
/// (Dmabuf records read through the region, Linear records from the copy), verifies it against
/// <see cref="FrameBuilder.FillPayload"/> and its expected size, and returns every token.
/// </summary>
internal sealed class VerifyingDrain(DevmemSocket socket, DmabufRegion region, int count, Func<int, int> sizeOf)
{
    private readonly DmabufCmsg[] _cmsgs = new DmabufCmsg[128];
    private readonly byte[] _linear = new byte[128 * 1500];
    private readonly uint[] _tokens = new uint[128];
    private readonly byte[] _packet = new byte[65536];
    private readonly bool[] _seen = new bool[count];
    private int _pos;

    public long Verified { get; private set; }

    public long Mismatches { get; private set; }

    public long Duplicates { get; private set; }

    public long DmabufRecords { get; private set; }

    public long LinearRecords { get; private set; }

    public List<string> Errors { get; } = [];

    /// <summary>Waits (bounded) until the socket has something to receive.</summary>
    public bool WaitReadable(int timeoutMs) => socket.WaitReadable(timeoutMs);

    /// <summary>Receives everything queued now; returns the datagrams completed.</summary>
    public int DrainOnce()
    {
        int datagrams = 0;
        while (true)
        {
            int n = socket.Receive(_cmsgs, _linear, out _);
            if (n == 0)
            {
                return datagrams;
            }

            int t = 0;
            for (int i = 0; i < n; i++)
            {
                ref DmabufCmsg c = ref _cmsgs[i];
                ReadOnlySpan<byte> bytes;
                if (c.Type == DevmemCmsgType.Dmabuf)
                {
                    bytes = region.GetSpan((long)c.FragOffset, (int)c.FragSize);
                    _tokens[t++] = c.FragToken;
                    DmabufRecords++;
                }
                else
                {
                    bytes = _linear.AsSpan(c.LinearOffset, (int)c.FragSize);
                    LinearRecords++;
                }

                bytes.CopyTo(_packet.AsSpan(_pos));
                _pos += bytes.Length;
                if (c.IsEndOfPacket)
                {
                    Check(_packet.AsSpan(0, _pos));
                    _pos = 0;
                    datagrams++;
                }
            }

            int freed = socket.DontNeed(_tokens.AsSpan(0, t));
            if (freed != t)
            {
                Errors.Add($"DontNeed freed {freed} of {t} tokens");
            }
        }
    }

    /// <summary>Drains until <paramref name="total"/> datagrams have been verified or <paramref name="timeoutMs"/> passes.</summary>
    public void DrainUntil(long total, int timeoutMs = 5000)
    {
        var sw = Stopwatch.StartNew();
        while (Verified + Mismatches < total && sw.ElapsedMilliseconds < timeoutMs)
        {
            if (DrainOnce() == 0)
            {
                socket.WaitReadable(10);
            }
        }
    }

    private void Check(ReadOnlySpan<byte> data)
    {
        if (!FrameBuilder.VerifyPayload(data, out ulong seq))
        {
            Fail($"payload of {data.Length} B does not match its pattern");
            return;
        }

        if (data.Length >= 8)
        {
            if (seq >= (ulong)_seen.Length || sizeOf((int)seq) != data.Length)
            {
                Fail($"datagram seq {seq} has {data.Length} B");
                return;
            }

            if (_seen[seq])
            {
                Duplicates++;
                Fail($"datagram seq {seq} received twice");
                return;
            }

            _seen[seq] = true;
        }

        Verified++;
    }

    private void Fail(string why)
    {
        Mismatches++;
        if (Errors.Count < 10)
        {
            Errors.Add(why);
        }
    }
}
