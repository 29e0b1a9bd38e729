using System.Diagnostics;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;

namespace Netmem.Tests.Tun;

/// <summary>
/// Test-side reader: drains every queue of a <see cref="TunDevice"/>, parses each packet, checks
/// pattern datagrams against their expected sequence per flow, and tallies everything else.
/// </summary>
internal sealed class TunReceiver(TunDevice tun, Func<int, int> sizeOf)
{
    private readonly byte[] _buffer = new byte[65536];
    private readonly Dictionary<ushort, Flow> _flows = [];

    internal int PacketsRead { get; private set; }

    internal long BytesRead { get; private set; }

    internal int[] PerQueue { get; } = new int[tun.QueueCount];

    /// <summary>Non-pattern packets by drop reason and description ("IPv6 58 type 133 -> ff02::2").</summary>
    internal Dictionary<string, int> Other { get; } = [];

    internal List<string> Failures { get; } = [];

    /// <summary>Expects pattern datagrams to <paramref name="port"/>, from <paramref name="sourcePort"/>, over <paramref name="l3"/>.</summary>
    internal void ExpectFlow(ushort port, ushort sourcePort, L3Kind l3) => _flows[port] = new Flow(sourcePort, l3);

    internal int Received(ushort port) => _flows[port].Next;

    /// <summary>Reads until <paramref name="done"/> holds; fails the run after <paramref name="timeoutMs"/> without progress.</summary>
    internal bool ReadUntil(Func<bool> done, int timeoutMs = 2000)
    {
        var idle = Stopwatch.StartNew();
        while (!done())
        {
            if (ReadAvailable() > 0)
            {
                idle.Restart();
            }
            else if (idle.ElapsedMilliseconds > timeoutMs)
            {
                return false;
            }
            else
            {
                tun.WaitAnyReadable(50);
            }
        }

        return true;
    }

    /// <summary>Reads until every queue has been empty for <paramref name="quietMs"/>.</summary>
    internal void DrainUntilQuiet(int quietMs)
    {
        while (tun.WaitAnyReadable(quietMs) >= 0)
        {
            ReadAvailable();
        }
    }

    private int ReadAvailable()
    {
        int total = 0;
        for (int q = 0; q < tun.QueueCount; q++)
        {
            int n;
            while ((n = tun.Read(q, _buffer)) >= 0)
            {
                PerQueue[q]++;
                total++;
                PacketsRead++;
                BytesRead += n;
                Inspect(_buffer.AsSpan(0, n));
            }
        }

        return total;
    }

    private void Inspect(ReadOnlySpan<byte> packet)
    {
        IpDropReason reason = IpPacketParser.Parse(packet, out IpPacketInfo info);
        if (reason == IpDropReason.None && info.L4 == L4Kind.Udp && _flows.TryGetValue(info.DestinationPort, out Flow? flow))
        {
            int seq = flow.Next++;
            int expected = sizeOf(seq);
            if (info.L3 != flow.L3 || info.SourcePort != flow.SourcePort)
            {
                Fail($"seq {seq} port {info.DestinationPort}: {info.L3} from port {info.SourcePort}, expected {flow.L3} from {flow.SourcePort}");
            }
            else if (info.PayloadLength != expected || info.PayloadOffset + info.PayloadLength != packet.Length)
            {
                Fail($"seq {seq} port {info.DestinationPort}: payload {info.PayloadLength} B at {info.PayloadOffset} in {packet.Length} B, expected {expected} B");
            }
            else
            {
                int bad = NamespaceUdpSender.FindPatternMismatch(seq, packet.Slice(info.PayloadOffset, info.PayloadLength));
                if (bad >= 0)
                {
                    Fail($"seq {seq} port {info.DestinationPort}: payload byte {bad} differs from the pattern");
                }
            }

            return;
        }

        string what = $"{reason} {info.L3} proto {info.Protocol}";
        if (info.Protocol == IpPacketParser.ProtocolIcmpV6 && info.L4Offset > 0 && info.L4Offset < packet.Length)
        {
            what += $" type {packet[info.L4Offset]}";
        }

        if (info.L3 != L3Kind.None)
        {
            what += $" -> {info.GetDestinationIPAddress()}";
        }

        Other[what] = Other.GetValueOrDefault(what) + 1;
    }

    private void Fail(string message)
    {
        if (Failures.Count < 20)
        {
            Failures.Add(message);
        }
    }

    private sealed class Flow(ushort sourcePort, L3Kind l3)
    {
        public ushort SourcePort { get; } = sourcePort;

        public L3Kind L3 { get; } = l3;

        public int Next { get; set; }
    }
}
