using Netmem.Devmem;
using Netmem.Drivers.Parsing;

namespace Netmem.Tool.Demo;

/// <summary>
/// The demo's consumer for one flow: a thread that receives, reassembles each datagram's
/// fragments by reading them through the region (or from the linear copy), verifies the bytes
/// and sequence, and hands the tokens back. Allocates only at start.
/// </summary>
internal sealed class FlowConsumer
{
    private readonly DevmemSocket _socket;
    private readonly int _payload;
    private readonly bool _corruptOnce;
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _received;
    private long _verified;
    private long _mismatches;
    private long _linearBytes;

    public FlowConsumer(DevmemSocket socket, int payload, bool corruptOnce)
    {
        _socket = socket;
        _payload = payload;
        _corruptOnce = corruptOnce;
        _thread = new Thread(Loop) { IsBackground = true, Name = "demo-consumer-" + socket.Flow.DstPort };
        _thread.Start();
    }

    public long Received => Interlocked.Read(ref _received);

    public long Verified => Interlocked.Read(ref _verified);

    public long Mismatches => Interlocked.Read(ref _mismatches);

    /// <summary>Payload bytes the socket copied out of readable memory into this consumer's buffer.</summary>
    public long LinearBytes => Interlocked.Read(ref _linearBytes);

    public void Stop()
    {
        _stop = true;
        _thread.Join();
    }

    private void Loop()
    {
        var cmsgs = new DmabufCmsg[64];
        var linear = new byte[64 * 9216];
        var tokens = new uint[64];
        var packet = new byte[_payload + 64];
        int pos = 0;
        ulong expected = 0;
        bool corrupt = _corruptOnce;
        while (!_stop || _socket.QueuedFragments > 0)
        {
            if (!_socket.WaitReadable(20))
            {
                continue;
            }

            int n = _socket.Receive(cmsgs, linear, out int linearBytes);
            if (linearBytes != 0)
            {
                Interlocked.Add(ref _linearBytes, linearBytes);
            }

            int t = 0;
            for (int i = 0; i < n; i++)
            {
                ref DmabufCmsg c = ref cmsgs[i];
                int size = (int)c.FragSize;
                if (c.Type == DevmemCmsgType.Dmabuf)
                {
                    // The record names its binding; the binding names the region the bytes are in.
                    DmabufRegion region = DmabufBinding.FromId((int)c.DmabufId)?.Region
                        ?? throw new InvalidOperationException($"{c} names a binding that no longer exists");
                    Span<byte> bytes = region.GetSpan((long)c.FragOffset, size);
                    if (corrupt)
                    {
                        // Forced failure for tests: a bad DMA write, caught by the verification below.
                        bytes[0] ^= 0xFF;
                        corrupt = false;
                    }

                    tokens[t++] = c.FragToken;
                    Copy(bytes, packet, ref pos);
                }
                else
                {
                    Copy(linear.AsSpan(c.LinearOffset, size), packet, ref pos);
                }

                if (c.IsEndOfPacket)
                {
                    // Datagrams dropped under backpressure leave gaps; going backwards is an error.
                    ulong seq = 0;
                    bool ok = pos == _payload && FrameBuilder.VerifySequencePayload(packet.AsSpan(0, pos), out seq)
                        && (pos < 8 || seq >= expected);
                    Interlocked.Increment(ref ok ? ref _verified : ref _mismatches);
                    Interlocked.Increment(ref _received);
                    if (ok && pos >= 8)
                    {
                        expected = seq + 1;
                    }

                    pos = 0;
                }
            }

            _socket.DontNeed(tokens.AsSpan(0, t));
        }
    }

    private static void Copy(ReadOnlySpan<byte> src, byte[] packet, ref int pos)
    {
        int room = packet.Length - pos;
        src[..Math.Min(room, src.Length)].CopyTo(packet.AsSpan(pos));
        pos += src.Length;
    }
}
