using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Xdp;
using Netmem.Net;
using Netmem.Native;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>
/// An XdpNic on a veth's device end whose queue 0 is bound for rx to a memfd region that is also
/// bound for tx, a <see cref="DevmemSocket"/> connected from the device end's address to an
/// ordinary kernel UDP socket (<see cref="Receiver"/>) in the peer namespace, and
/// <see cref="RoundTrip"/>, which sends a numbered, verified stream from the region and checks
/// every datagram and every completion.
/// </summary>
/// <remarks>
/// The payload slots are the region's last <see cref="Slots"/> x <see cref="SlotStride"/> bytes:
/// the rx binding hands the queue chunks from the bottom of the region (fill ring, header
/// chunks), and the rig checks that none of them reaches the slots, so neither the kernel's
/// receive nor the driver's headers write into a payload. Nothing is sent to the device end.
/// </remarks>
internal sealed class XdpTxRig : IDisposable
{
    /// <summary>Bytes between the starts of two payload slots: not a divisor of 4 KiB, so payloads cross chunk boundaries.</summary>
    internal const int SlotStride = 1536;

    /// <summary>Payload slots: a slot is rewritten only after its previous send completed.</summary>
    internal const int Slots = 2048;

    /// <summary>Most datagrams sent and not yet received.</summary>
    internal const int Window = 256;

    /// <summary>The region's size.</summary>
    internal const long RegionBytes = 32 << 20;

    /// <summary>The region offset of payload slot 0.</summary>
    internal const long PayloadBase = RegionBytes - ((long)Slots * SlotStride);

    internal const ushort SourcePort = 7401;
    internal const ushort DestinationPort = 7400;

    internal XdpTxRig(XdpNicOptions? options = null, Func<VethPair, XdpNicOptions>? optionsFor = null)
    {
        Veth = VethPair.Create();
        try
        {
            Options = optionsFor?.Invoke(Veth) ?? options ?? new XdpNicOptions { TxDestinationMac = Veth.PeerMacAddress.ToArray() };
            Bound = new XdpBoundNic(Veth, "xdp-tx", RegionBytes, Options);
            TxHandle = Nic.Device.BindDmabufTx(Region);
            Source = new IPEndPoint(VethPair.DeviceIPv4, SourcePort);
            Destination = new IPEndPoint(VethPair.PeerIPv4, DestinationPort);
            Socket = new DevmemSocket(FlowKey.Udp(SourcePort), maxTxInFlight: 1024) { ZeroCopy = true };
            Socket.Connect(Nic.Device, Source, Destination);
            Receiver = Veth.PeerNamespace.Run(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp) { ReceiveTimeout = 5000 };
                s.SetRawSocketOption(1, 33, BitConverter.GetBytes(8 << 20)); // SO_RCVBUFFORCE (root)
                s.Bind(Destination);
                return s;
            });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public VethPair Veth { get; }

    public XdpNicOptions Options { get; } = null!;

    public XdpBoundNic Bound { get; } = null!;

    public XdpNic Nic => Bound.Nic;

    public DmabufRegion Region => Bound.Region;

    public DmabufBindingHandle TxHandle { get; } = null!;

    public IPEndPoint Source { get; } = null!;

    public IPEndPoint Destination { get; } = null!;

    public DevmemSocket Socket { get; } = null!;

    public Socket Receiver { get; } = null!;

    public uint Id => (uint)TxHandle.BindingId;

    /// <summary>The largest IPv4 payload on the veth (MTU 1500).</summary>
    public static int MaxPayload => 1500 - 20 - 8;

    /// <summary>
    /// Sends datagrams 0..<paramref name="count"/>-1 from slot seq % <see cref="Slots"/>, sized by
    /// <paramref name="sizeOf"/> (every fifth as two ranges), receives each on
    /// <see cref="Receiver"/> and checks size, content, order and source, and checks every
    /// completion is in order with <paramref name="code"/>. Returns the payload bytes.
    /// </summary>
    public long RoundTrip(int count, Func<int, int> sizeOf, ZeroCopyCode code, TimeSpan timeLimit)
    {
        AssertPayloadSlotsFree();
        var sw = Stopwatch.StartNew();
        byte[] buffer = new byte[65536];
        SocketAddress from = new(AddressFamily.InterNetwork);
        SocketAddress expectedFrom = Source.Serialize();
        var notes = new ZeroCopyCompletion[64];
        Span<DmabufIov> ranges = stackalloc DmabufIov[2];
        long bytes = 0;
        int sent = 0;
        int received = 0;
        long reported = 0;
        while (received < count || reported < count)
        {
            Assert.True(sw.Elapsed < timeLimit, $"round trip not done in {timeLimit}: sent {sent}, received {received}, reported {reported} of {count}; tx {Nic.TxStats}, {Nic.TxCounters}");
            bool progress = false;
            while (sent < count && sent - received < Window && sent - reported < Slots)
            {
                int size = sizeOf(sent);
                long offset = PayloadBase + ((long)(sent % Slots) * SlotStride);
                FrameBuilder.FillSequencePayload(Region.GetSpan(offset, size), (ulong)sent);
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
                    break;
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
                    Assert.Equal(code, z.Code);
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
                    Assert.Fail($"datagram {received} did not arrive in 5 s (sent {sent}; tx {Nic.TxStats}, {Nic.TxCounters}, xsk {Nic.ReadXskStatistics(0)})");
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

    /// <summary>No chunk the queue holds (fill ring or tx slots) lies in the payload slots.</summary>
    public void AssertPayloadSlotsFree()
    {
        Assert.True(XdpTestKit.WaitUntil(() => Nic.TxPortOf(0) is not null), "queue 0 published no tx port");
        long posted = Nic.QueueMemory(0)!.PostedEnd();
        ulong slots = Nic.TxPortOf(0)!.SlotsEnd;
        Assert.True(posted <= PayloadBase && slots <= (ulong)PayloadBase, $"the queue holds chunks up to {posted} (rx) and {slots} (tx); payloads start at {PayloadBase}");
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
        Socket?.Dispose();
        TxHandle?.Dispose();
        Bound?.Dispose();
        Receiver?.Dispose();
        Veth?.Dispose();
    }
}
