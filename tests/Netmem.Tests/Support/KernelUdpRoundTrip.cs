using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Native;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Support;

/// <summary>
/// A numbered, verified stream sent from a region bound for transmit through a
/// <see cref="DevmemSocket"/> to an ordinary kernel UDP socket, the check every devmem TX rig
/// runs: payloads <see cref="FrameBuilder.FillSequencePayload"/> of the sequence number, in slot
/// seq % <see cref="Slots"/> from <see cref="PayloadBase"/> (every fifth as two ranges); each
/// datagram received and checked for size, content, order and source; each completion read
/// and checked for order and code. Paced: at most <see cref="Window"/> datagrams between send and
/// receive, and a slot is rewritten only after its previous send completed.
/// </summary>
internal sealed class KernelUdpRoundTrip
{
    /// <summary>The devmem socket, connected from <see cref="Source"/> to the receiver's address.</summary>
    public required DevmemSocket Socket { get; init; }

    /// <summary>The kernel UDP socket that receives (its receive timeout bounds the wait for one datagram).</summary>
    public required Socket Receiver { get; init; }

    /// <summary>The address every datagram must come from.</summary>
    public required IPEndPoint Source { get; init; }

    /// <summary>The TX binding sent from.</summary>
    public required uint BindingId { get; init; }

    /// <summary>Writes datagram <c>seq</c>'s payload of <c>size</c> bytes at region offset <c>offset</c> (through the CPU, or by the device).</summary>
    public required Action<long, int, ulong> WritePayload { get; init; }

    /// <summary>The driver's state, for a failure message.</summary>
    public required Func<string> Describe { get; init; }

    /// <summary>The region offset of payload slot 0.</summary>
    public long PayloadBase { get; init; }

    /// <summary>Bytes between the starts of two payload slots: not a divisor of 4 KiB, so payloads cross net_iov and chunk boundaries.</summary>
    public const int SlotStride = 1536;

    /// <summary>Payload slots: a slot is rewritten only after its previous send completed.</summary>
    public const int Slots = 2048;

    /// <summary>The region bytes the slots span.</summary>
    public const long SlotBytes = (long)Slots * SlotStride;

    /// <summary>Most datagrams sent and not yet received: what the receiver's buffer holds with room to spare.</summary>
    public const int Window = 256;

    /// <summary>
    /// Sends datagrams 0..<paramref name="count"/>-1 sized by <paramref name="sizeOf"/>, checks
    /// each on the receiver and each completion against <paramref name="code"/>. Fails the test on
    /// a mismatch, a datagram missing for the receive timeout, or after <paramref name="timeLimit"/>.
    /// Returns the payload bytes.
    /// </summary>
    public long Run(int count, Func<int, int> sizeOf, ZeroCopyCode code, TimeSpan timeLimit)
    {
        var sw = Stopwatch.StartNew();
        byte[] buffer = new byte[65536];
        SocketAddress from = new(Source.AddressFamily);
        SocketAddress expectedFrom = Source.Serialize();
        var notes = new ZeroCopyCompletion[64];
        Span<DmabufIov> ranges = stackalloc DmabufIov[2];
        long bytes = 0;
        int sent = 0;
        int received = 0;
        long reported = 0;
        while (received < count || reported < count)
        {
            Assert.True(sw.Elapsed < timeLimit, $"round trip not done in {timeLimit}: sent {sent}, received {received}, reported {reported} of {count}; {Describe()}");
            bool progress = false;
            while (sent < count && sent - received < Window && sent - reported < Slots)
            {
                int size = sizeOf(sent);
                long offset = PayloadBase + ((long)(sent % Slots) * SlotStride);
                WritePayload(offset, size, (ulong)sent);
                int n = 1;
                ranges[0] = new DmabufIov((ulong)offset, (uint)size);
                if (sent % 5 == 0 && size > 1)
                {
                    ranges[0] = new DmabufIov((ulong)offset, (uint)(size / 2));
                    ranges[1] = new DmabufIov((ulong)offset + (uint)(size / 2), (uint)(size - (size / 2)));
                    n = 2;
                }

                int err = Socket.TrySendDmabuf(BindingId, ranges[..n], out uint seq);
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
                    Assert.Fail($"datagram {received} did not arrive in {Receiver.ReceiveTimeout} ms (sent {sent}; {Describe()})");
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

    private static void Verify(int expected, ReadOnlySpan<byte> payload, int size)
    {
        Assert.True(payload.Length == size, $"datagram {expected}: {payload.Length} bytes, sent {size}");
        Assert.True(FrameBuilder.VerifySequencePayload(payload, out ulong seq), $"datagram {expected}: payload is not the sequence pattern");
        ulong want = payload.Length >= 8 ? (ulong)expected : (byte)expected;
        Assert.True(seq == want, $"datagram {expected} arrived as {seq}: out of order or lost");
    }
}
