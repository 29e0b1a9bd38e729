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
/// A TunNic that transmits from a bound region to an ordinary kernel UDP socket of its own
/// namespace: the devmem socket sends from the TUN subnet's peer address to the TUN's own
/// address, the namespace's kernel receives what TunNic writes and delivers it to
/// <see cref="Receiver"/>. <see cref="RoundTrip"/> sends a numbered, verified stream.
/// </summary>
internal sealed class TunTxRig : IDisposable
{
    /// <summary>Bytes between the starts of two payload slots: not a divisor of 4 KiB, so payloads cross net_iov boundaries.</summary>
    internal const int SlotStride = 1536;

    /// <summary>Payload slots in the region: a slot is rewritten only after its previous send completed.</summary>
    internal const int Slots = 2048;

    /// <summary>Most datagrams sent and not yet received: what the receiver's buffer holds with room to spare.</summary>
    internal const int Window = 256;

    internal const ushort SourcePort = 7301;
    internal const ushort DestinationPort = 7300;

    private readonly byte[] _scratch = new byte[SlotStride];

    internal TunTxRig(bool deviceOnly = false, bool ipv6 = false)
    {
        IsIPv6 = ipv6;
        Namespace = NetNamespace.Create();
        Region = deviceOnly ? DmabufRegion.CreateDeviceOnly((long)Slots * SlotStride) : DmabufRegion.CreateMemfd("tun-tx", (long)Slots * SlotStride);
        Nic = new TunNic(Namespace, new TunNicOptions { Configuration = new TunConfiguration { IPv6LinkLocal = false } });
        Handle = Nic.Device.BindDmabufTx(Region);
        Source = new IPEndPoint(ipv6 ? TunDevice.PeerIPv6 : TunDevice.PeerIPv4, SourcePort);
        Destination = new IPEndPoint(ipv6 ? TunDevice.LocalIPv6 : TunDevice.LocalIPv4, DestinationPort);
        Socket = new DevmemSocket(FlowKey.Udp(SourcePort), maxTxInFlight: 1024) { ZeroCopy = true };
        Socket.Connect(Nic.Device, Source, Destination);
        Receiver = Namespace.Run(() =>
        {
            var s = new Socket(Destination.AddressFamily, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 5000 };
            // SO_RCVBUFFORCE (root): room for far more than Window datagrams, so none is lost.
            s.SetRawSocketOption(1, 33, BitConverter.GetBytes(8 << 20));
            s.Bind(Destination);
            return s;
        });
    }

    public bool IsIPv6 { get; }

    public NetNamespace Namespace { get; }

    public DmabufRegion Region { get; }

    public TunNic Nic { get; }

    public DmabufBindingHandle Handle { get; }

    public IPEndPoint Source { get; }

    public IPEndPoint Destination { get; }

    public DevmemSocket Socket { get; }

    /// <summary>The kernel UDP socket bound to <see cref="Destination"/> inside the namespace.</summary>
    public Socket Receiver { get; }

    /// <summary>The largest payload TunNic sends in one datagram (MTU 1500).</summary>
    public int MaxPayload => 1500 - (IsIPv6 ? 40 : 20) - 8;

    public uint Id => (uint)Handle.BindingId;

    /// <summary>The DMA address of region offset <paramref name="offset"/> in the TX binding.</summary>
    public ulong DmaAddressOf(long offset)
    {
        foreach (DmaSegment s in Handle.Binding.Segments)
        {
            if (offset >= s.RegionOffset && offset < s.RegionOffset + s.Length)
            {
                return s.DmaAddress + (ulong)(offset - s.RegionOffset);
            }
        }

        throw new ArgumentOutOfRangeException(nameof(offset));
    }

    /// <summary>
    /// Sends datagrams 0..<paramref name="count"/>-1 from the region (payload
    /// <see cref="FrameBuilder.FillSequencePayload"/> of the sequence number, sized by
    /// <paramref name="sizeOf"/>, in slot seq % <see cref="Slots"/>; every fifth as two ranges),
    /// receives each on <see cref="Receiver"/> and checks size, content, order and source, and
    /// reads every completion, checking it is in order and zero-copy. Paced: at most
    /// <see cref="Window"/> datagrams between send and receive. Fails the test on a mismatch, a
    /// datagram missing for 5 s, or after <paramref name="timeLimit"/>. Returns the payload bytes.
    /// </summary>
    public long RoundTrip(int count, Func<int, int> sizeOf, TimeSpan timeLimit)
    {
        var sw = Stopwatch.StartNew();
        byte[] buffer = new byte[65536];
        SocketAddress from = new(Destination.AddressFamily);
        SocketAddress expectedFrom = Source.Serialize();
        var notes = new ZeroCopyCompletion[64];
        Span<DmabufIov> ranges = stackalloc DmabufIov[2];
        long bytes = 0;
        int sent = 0;
        int received = 0;
        long reported = 0;
        while (received < count || reported < count)
        {
            Assert.True(sw.Elapsed < timeLimit, $"round trip not done in {timeLimit}: sent {sent}, received {received}, reported {reported} of {count}");
            bool progress = false;
            while (sent < count && sent - received < Window && sent - reported < Slots)
            {
                int size = sizeOf(sent);
                long offset = (long)(sent % Slots) * SlotStride;
                WritePayload(offset, size, (ulong)sent);
                int n = 1;
                ranges[0] = new DmabufIov((ulong)offset, (uint)size);
                if (sent % 5 == 0 && size > 1)
                {
                    ranges[0] = new DmabufIov((ulong)offset, (uint)(size / 2));
                    ranges[1] = new DmabufIov((ulong)offset + (uint)(size / 2), (uint)(size - (size / 2)));
                    n = 2;
                }

                int err = Socket.TrySendDmabuf(Id, ranges[..n], out uint seq);
                if (err == Errno.ENOBUFS)
                {
                    break; // completions not read yet
                }

                Assert.Equal(0, err);
                Assert.Equal((uint)sent, seq);
                bytes += size;
                sent++;
                progress = true;
            }

            int c;
            while ((c = Socket.ReadCompletions(notes)) > 0)
            {
                foreach (ZeroCopyCompletion z in notes.AsSpan(0, c))
                {
                    Assert.Equal((uint)reported, z.First);
                    Assert.Equal(ZeroCopyCode.ZeroCopy, z.Code);
                    reported += z.Count;
                }

                progress = true;
            }

            if (received < sent)
            {
                int got;
                try
                {
                    got = Receiver.ReceiveFrom(buffer, SocketFlags.None, from);
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.TimedOut)
                {
                    Assert.Fail($"datagram {received} did not arrive in 5 s (sent {sent}, tx {Nic.TxStats}, writes {Nic.TxCounters})");
                    throw;
                }

                Verify(received, buffer.AsSpan(0, got), sizeOf(received));
                Assert.True(from.Equals(expectedFrom), $"datagram {received} came from {Source.Create(from)}, not {Source}");
                received++;
                progress = true;
            }

            if (!progress)
            {
                Socket.WaitCompletions(100);
            }
        }

        Assert.Equal(0, Receiver.Available);
        return bytes;
    }

    /// <summary>Puts the payload of datagram <paramref name="seq"/> at <paramref name="offset"/>: through the CPU mapping, or by the device for a device-only region.</summary>
    private void WritePayload(long offset, int size, ulong seq)
    {
        if (Region.IsCpuMapped)
        {
            FrameBuilder.FillSequencePayload(Region.GetSpan(offset, size), seq);
        }
        else
        {
            Span<byte> p = _scratch.AsSpan(0, size);
            FrameBuilder.FillSequencePayload(p, seq);
            Nic.Dma.DmaWrite(DmaAddressOf(offset), p);
        }
    }

    private static void Verify(int expected, ReadOnlySpan<byte> payload, int size)
    {
        Assert.True(payload.Length == size, $"datagram {expected}: {payload.Length} bytes, sent {size}");
        Assert.True(FrameBuilder.VerifySequencePayload(payload, out ulong seq), $"datagram {expected}: payload is not the sequence pattern");
        ulong want = payload.Length >= 8 ? (ulong)expected : (byte)expected;
        Assert.True(seq == want, $"datagram {expected} arrived as {seq}: out of order or lost");
    }

    public void Dispose()
    {
        Socket.Dispose();
        Handle.Dispose();
        Nic.Dispose();
        Receiver.Dispose();
        Region.Dispose();
        Namespace.Dispose();
    }
}
