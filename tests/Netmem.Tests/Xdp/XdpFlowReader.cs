using System.Diagnostics;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Tun;

namespace Netmem.Tests.Xdp;

/// <summary>
/// Test-side reader of one XdpNic flow: receives on the test's thread, puts each datagram back
/// together from its records (region fragments read through the region, linear copies), checks
/// it against the sender's pattern for its sequence number, and returns the tokens at once or
/// keeps them (to hold memory out of the pool).
/// </summary>
internal sealed class XdpFlowReader(DevmemSocket socket, Func<int, int>? sizeOf, bool[]? seen = null)
{
    private readonly DmabufCmsg[] _cmsgs = new DmabufCmsg[DevmemSocket.MaxDontNeedTokens];
    private readonly byte[] _linear = new byte[256 * 9216];
    private readonly byte[] _packet = new byte[65536];
    private readonly List<uint> _held = [];
    private int _pos;

    /// <summary>Datagrams put back together.</summary>
    public int Received { get; private set; }

    /// <summary>Payload bytes received.</summary>
    public long Bytes { get; private set; }

    /// <summary>Datagrams whose payload arrived as region fragments.</summary>
    public int FromRegion { get; private set; }

    /// <summary>Datagrams whose payload arrived as linear data.</summary>
    public int Linear { get; private set; }

    /// <summary>Mismatches, at most 20 described.</summary>
    public List<string> Failures { get; } = [];

    /// <summary>Keep tokens instead of returning them (see <see cref="ReturnHeld"/>).</summary>
    public bool Hold { get; set; }

    /// <summary>Tokens held.</summary>
    public int HeldTokens => _held.Count;

    /// <summary>Receives until <paramref name="count"/> datagrams arrived in all, or nothing came for <paramref name="idleMs"/>.</summary>
    public bool ReceiveUntil(int count, int idleMs = 2000)
    {
        var idle = Stopwatch.StartNew();
        while (Received < count)
        {
            if (!socket.WaitReadable(20))
            {
                if (idle.ElapsedMilliseconds > idleMs)
                {
                    return false;
                }

                continue;
            }

            idle.Restart();
            Drain();
        }

        return true;
    }

    /// <summary>Returns every held token; how many fragments the socket freed.</summary>
    public int ReturnHeld()
    {
        // SO_DEVMEM_DONTNEED takes at most 128 token ranges per call, as in the kernel.
        uint[] held = [.. _held];
        int freed = 0;
        for (int i = 0; i < held.Length; i += DevmemSocket.MaxDontNeedTokens)
        {
            freed += socket.DontNeed(held.AsSpan(i, Math.Min(DevmemSocket.MaxDontNeedTokens, held.Length - i)));
        }

        _held.Clear();
        return freed;
    }

    private void Drain()
    {
        int n = socket.Receive(_cmsgs, _linear, out _);
        Span<uint> tokens = stackalloc uint[DevmemSocket.MaxDontNeedTokens];
        int t = 0;
        bool region = false;
        for (int i = 0; i < n; i++)
        {
            ref DmabufCmsg c = ref _cmsgs[i];
            int size = (int)c.FragSize;
            if (c.Type == DevmemCmsgType.Dmabuf)
            {
                DmabufRegion r = DmabufBinding.FromId((int)c.DmabufId)?.Region
                    ?? throw new InvalidOperationException($"{c} names a binding that no longer exists");
                r.GetSpan((long)c.FragOffset, size).CopyTo(_packet.AsSpan(_pos));
                tokens[t++] = c.FragToken;
                region = true;
            }
            else
            {
                _linear.AsSpan(c.LinearOffset, size).CopyTo(_packet.AsSpan(_pos));
            }

            _pos += size;
            if (!c.IsEndOfPacket)
            {
                continue;
            }

            if (sizeOf is null)
            {
                // Sequence mode: the payload carries its own number (another path may take some).
                if (!FrameBuilder.VerifySequencePayload(_packet.AsSpan(0, _pos), out ulong s) || s >= (ulong)seen!.Length)
                {
                    Fail($"datagram {Received}: {_pos} B that do not verify as a sequence payload");
                }
                else if (seen[s])
                {
                    Fail($"sequence {s} received twice");
                }
                else
                {
                    seen[s] = true;
                }
            }
            else
            {
                int seq = Received;
                int expected = sizeOf(seq);
                if (_pos != expected)
                {
                    Fail($"seq {seq}: {_pos} B, expected {expected} B");
                }
                else
                {
                    int bad = NamespaceUdpSender.FindPatternMismatch(seq, _packet.AsSpan(0, _pos));
                    if (bad >= 0)
                    {
                        Fail($"seq {seq}: payload byte {bad} differs from the pattern");
                    }
                }
            }

            if (region)
            {
                FromRegion++;
            }
            else
            {
                Linear++;
            }

            Received++;
            Bytes += _pos;
            _pos = 0;
            region = false;
        }

        if (Hold)
        {
            foreach (uint tok in tokens[..t])
            {
                _held.Add(tok);
            }
        }
        else if (t > 0)
        {
            socket.DontNeed(tokens[..t]);
        }
    }

    private void Fail(string message)
    {
        if (Failures.Count < 20)
        {
            Failures.Add(message);
        }
    }
}
