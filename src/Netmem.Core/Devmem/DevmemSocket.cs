#pragma warning disable CS1591 // Undocumented public members here are left to the devmem TX change; remove once they are documented.
using System.Globalization;
using System.Runtime.CompilerServices;
using Netmem.Native;

namespace Netmem.Devmem;

/// <summary>
/// What a user of devmem sees: one socket per flow. A receive returns, per payload fragment, a
/// <see cref="DmabufCmsg"/> naming where it sits in the bound region with a token, and copies
/// what arrived in readable memory into a linear buffer. <see cref="DontNeed(ReadOnlySpan{DmabufToken})"/> hands fragments
/// back by token range. Closing returns everything the socket holds.
/// </summary>
/// <remarks>
/// Drivers deliver whole datagrams with <see cref="TryDeliver"/> from their poll loops; the
/// socket then owns one pool reference per fragment. Outstanding work (fragments queued plus
/// tokens held by the user) is bounded by <see cref="MaxOutstanding"/>: past it, delivery
/// fails and the driver drops and counts the datagram, giving its netmems back, so a slow
/// consumer applies backpressure and nothing leaks. Queue and token table are preallocated and
/// guarded by one lock, so steady-state receive and DONTNEED allocate nothing. DONTNEED follows
/// the kernel's limits: at most <see cref="MaxDontNeedTokens"/> ranges, and at most
/// <see cref="MaxDontNeedFrags"/> tokens looked at, per call.
/// </remarks>
public sealed partial class DevmemSocket : IDisposable
{
    /// <summary>Most token ranges one <see cref="DontNeed(ReadOnlySpan{DmabufToken})"/> call takes (the kernel's <c>MAX_DONTNEED_TOKENS</c>).</summary>
    public const int MaxDontNeedTokens = 128;

    /// <summary>Most tokens one <see cref="DontNeed(ReadOnlySpan{DmabufToken})"/> call looks at (the kernel's <c>MAX_DONTNEED_FRAGS</c>).</summary>
    public const int MaxDontNeedFrags = 1024;

    private readonly Lock _lock = new();
    private readonly Segment[] _queue;
    private int _head;
    private int _count;

    /// <summary>Token table: slot i holds the netmem of token i + 1, or 0.</summary>
    private readonly nuint[] _tokens;
    private readonly int[] _freeTokens;
    private int _freeTokenCount;

    private readonly ManualResetEventSlim _readable = new(false);
    private bool _closed;

    private long _deliveredPackets;
    private long _deliveredBytes;
    private long _receivedFragments;
    private long _dontNeedFreed;

    /// <param name="flow">The flow this socket receives (for steering and logs).</param>
    /// <param name="maxOutstanding">Bound on fragments queued plus tokens held.</param>
    /// <param name="maxTxInFlight">Bound on zero-copy sends in flight or unreported (<see cref="MaxTxInFlight"/>): a power of two in 1..65536.</param>
    public DevmemSocket(FlowKey flow, int maxOutstanding = 4096, int maxTxInFlight = DefaultMaxTxInFlight)
    {
        if (maxOutstanding < 1 || maxOutstanding > (1 << 22))
        {
            throw new ArgumentOutOfRangeException(nameof(maxOutstanding), maxOutstanding, "The outstanding bound must be in 1..4194304.");
        }

        if (maxTxInFlight < 1 || maxTxInFlight > (1 << 16) || !int.IsPow2(maxTxInFlight))
        {
            throw new ArgumentOutOfRangeException(nameof(maxTxInFlight), maxTxInFlight, "The in-flight send bound must be a power of two in 1..65536.");
        }

        MaxTxInFlight = maxTxInFlight;

        Flow = flow;
        MaxOutstanding = maxOutstanding;
        _queue = new Segment[maxOutstanding];
        _tokens = new nuint[maxOutstanding];
        _freeTokens = new int[maxOutstanding];
        for (int i = 0; i < maxOutstanding; i++)
        {
            _freeTokens[i] = maxOutstanding - 1 - i;
        }

        _freeTokenCount = maxOutstanding;
    }

    public FlowKey Flow { get; }

    /// <summary>Bound on fragments queued plus tokens held by the user.</summary>
    public int MaxOutstanding { get; }

    /// <summary>Tokens handed out and not yet returned.</summary>
    public int TokensOutstanding
    {
        get
        {
            lock (_lock)
            {
                return MaxOutstanding - _freeTokenCount;
            }
        }
    }

    /// <summary>Fragments delivered by the driver and not yet received.</summary>
    public int QueuedFragments
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    public long DeliveredPackets => Interlocked.Read(ref _deliveredPackets);

    public long DeliveredBytes => Interlocked.Read(ref _deliveredBytes);

    public long ReceivedFragments => Interlocked.Read(ref _receivedFragments);

    public long DontNeedFreed => Interlocked.Read(ref _dontNeedFreed);

    public bool IsClosed => Volatile.Read(ref _closed);

    /// <summary>
    /// Driver side: queues one datagram's fragments. True when the socket took them (and their
    /// pool references); false when it is closed or past its outstanding bound, in which case
    /// the caller still owns them and must drop and count.
    /// </summary>
    public bool TryDeliver(ReadOnlySpan<RxFragment> fragments)
    {
        if (fragments.IsEmpty)
        {
            return false;
        }

        long bytes = 0;
        lock (_lock)
        {
            if (_closed || _count + fragments.Length + (MaxOutstanding - _freeTokenCount) > MaxOutstanding)
            {
                return false;
            }

            for (int i = 0; i < fragments.Length; i++)
            {
                RxFragment f = fragments[i];
                int slot = (_head + _count) % _queue.Length;
                _queue[slot] = new Segment(f.Netmem.Value, f.Offset, f.Length, i == fragments.Length - 1);
                _count++;
                bytes += f.Length;
            }
        }

        Interlocked.Increment(ref _deliveredPackets);
        Interlocked.Add(ref _deliveredBytes, bytes);
        if (!_readable.IsSet)
        {
            _readable.Set();
        }

        WakeAsyncReceive();
        return true;
    }

    /// <summary>Waits until fragments are queued or the socket is closed. False on timeout.</summary>
    public bool WaitReadable(int timeoutMs) => _readable.Wait(timeoutMs);

    /// <summary>
    /// Receives queued fragments: each one in the bound region becomes a Dmabuf record with a new
    /// token; each one in readable memory is copied into <paramref name="linear"/> and becomes a
    /// Linear record (its netmem goes back to its pool at once). Stops when either span is full.
    /// Returns the records filled; <paramref name="linearBytes"/> is how much of
    /// <paramref name="linear"/> was used.
    /// </summary>
    public int Receive(Span<DmabufCmsg> cmsgs, Span<byte> linear, out int linearBytes)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        int n = 0;
        linearBytes = 0;
        lock (_lock)
        {
            while (n < cmsgs.Length && _count > 0)
            {
                ref Segment s = ref _queue[_head];
                NetmemRef netmem = NetmemRef.FromValue(s.Netmem);
                ref DmabufCmsg c = ref cmsgs[n];
                c.Flags = s.EndOfPacket ? DmabufCmsgFlags.EndOfPacket : DmabufCmsgFlags.None;
                c.FragSize = (uint)s.Length;
                if (netmem.IsNetIov)
                {
                    int slot = _freeTokens[--_freeTokenCount];
                    _tokens[slot] = s.Netmem;
                    c.Type = DevmemCmsgType.Dmabuf;
                    c.FragOffset = netmem.RegionOffset + (ulong)s.Offset;
                    c.FragToken = (uint)slot + 1;
                    c.DmabufId = (uint)netmem.BindingId;
                    c.LinearOffset = 0;
                }
                else
                {
                    if (linearBytes + s.Length > linear.Length)
                    {
                        if (n == 0)
                        {
                            throw new ArgumentException($"The linear buffer ({linear.Length} bytes) cannot hold the next readable fragment ({s.Length} bytes).", nameof(linear));
                        }

                        break;
                    }

                    netmem.GetPageSpan().Slice(s.Offset, s.Length).CopyTo(linear[linearBytes..]);
                    c.Type = DevmemCmsgType.Linear;
                    c.FragOffset = 0;
                    c.FragToken = 0;
                    c.DmabufId = 0;
                    c.LinearOffset = linearBytes;
                    linearBytes += s.Length;
                    PagePool.PutNetmemAny(netmem);
                }

                s = default;
                _head = (_head + 1) % _queue.Length;
                _count--;
                n++;
            }

            if (_count == 0 && !_closed)
            {
                _readable.Reset();
            }
        }

        Interlocked.Add(ref _receivedFragments, n);
        return n;
    }

    /// <summary>
    /// Hands fragments back by token range (<c>SO_DEVMEM_DONTNEED</c>, the kernel's
    /// <c>sock_devmem_dontneed</c>). Returns how many it freed. Unknown, repeated and
    /// out-of-range tokens free nothing but still count towards the per-call limit: the call
    /// stops after looking at <see cref="MaxDontNeedFrags"/> tokens, so a caller that asked for
    /// more sees a count below what it holds and calls again with the rest.
    /// </summary>
    /// <exception cref="NetmemException">EINVAL: more than <see cref="MaxDontNeedTokens"/> ranges; nothing is freed.</exception>
    public int DontNeed(ReadOnlySpan<DmabufToken> tokens)
    {
        if (tokens.Length > MaxDontNeedTokens)
        {
            ThrowTooManyRanges(tokens.Length);
        }

        int freed = 0;
        int looked = 0;
        lock (_lock)
        {
            foreach (DmabufToken range in tokens)
            {
                for (uint j = 0; j < range.TokenCount; j++)
                {
                    if (++looked > MaxDontNeedFrags)
                    {
                        goto Done;
                    }

                    // Wraps past uint.MaxValue like the kernel's u32 sum; such a token is unknown.
                    if (FreeTokenLocked(unchecked(range.TokenStart + j)))
                    {
                        freed++;
                    }
                }
            }

        Done:;
        }

        Interlocked.Add(ref _dontNeedFreed, freed);
        return freed;
    }

    /// <summary>
    /// Hands fragments back by token, each token a range of one: the same as
    /// <see cref="DontNeed(ReadOnlySpan{DmabufToken})"/>, with its limits.
    /// </summary>
    /// <exception cref="NetmemException">EINVAL: more than <see cref="MaxDontNeedTokens"/> tokens; nothing is freed.</exception>
    public int DontNeed(ReadOnlySpan<uint> tokens)
    {
        if (tokens.Length > MaxDontNeedTokens)
        {
            ThrowTooManyRanges(tokens.Length);
        }

        int freed = 0;
        lock (_lock)
        {
            // At most 128 tokens: the frag limit cannot be reached.
            foreach (uint token in tokens)
            {
                if (FreeTokenLocked(token))
                {
                    freed++;
                }
            }
        }

        Interlocked.Add(ref _dontNeedFreed, freed);
        return freed;
    }

    /// <summary>
    /// Closes the socket, returning every queued fragment and every token still held. Zero-copy
    /// sends in flight still end as the device finishes them; their notifications are dropped.
    /// </summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            _closed = true;
            while (_count > 0)
            {
                PagePool.PutNetmemAny(NetmemRef.FromValue(_queue[_head].Netmem));
                _queue[_head] = default;
                _head = (_head + 1) % _queue.Length;
                _count--;
            }

            for (int i = 0; i < _tokens.Length; i++)
            {
                if (_tokens[i] != 0)
                {
                    PagePool.PutNetmemAny(NetmemRef.FromValue(_tokens[i]));
                    _tokens[i] = 0;
                    _freeTokens[_freeTokenCount++] = i;
                }
            }
        }

        _readable.Set();
        WakeAsyncReceive();
        CloseTx();
    }

    public override string ToString() => $"devmem socket {Flow}";

    /// <summary>Frees the fragment of <paramref name="token"/> if the user holds it. Caller holds <see cref="_lock"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool FreeTokenLocked(uint token)
    {
        if (token == 0 || token > (uint)_tokens.Length)
        {
            return false;
        }

        int slot = (int)token - 1;
        nuint v = _tokens[slot];
        if (v == 0)
        {
            return false;
        }

        _tokens[slot] = 0;
        _freeTokens[_freeTokenCount++] = slot;
        PagePool.PutNetmemAny(NetmemRef.FromValue(v));
        return true;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowTooManyRanges(int count) =>
        throw new NetmemException(Errno.EINVAL, string.Create(CultureInfo.InvariantCulture,
            $"SO_DEVMEM_DONTNEED takes at most {MaxDontNeedTokens} token ranges per call; {count} given"));

    private readonly record struct Segment(nuint Netmem, int Offset, int Length, bool EndOfPacket);
}

/// <summary>IP protocol numbers used in flow keys.</summary>
public enum IpProtocol : byte
{
    Tcp = 6,
    Udp = 17,
}

/// <summary>
/// A flow: a UDP/TCP destination port, optionally narrowed to a full 5-tuple. Addresses are
/// kept as two ulongs (IPv4 mapped into the low bits) so keys compare and hash without allocation.
/// </summary>
public readonly record struct FlowKey(IpProtocol Protocol, ushort DstPort, UInt128 SrcAddr = default, UInt128 DstAddr = default, ushort SrcPort = 0)
{
    /// <summary>True when the key names only a protocol and destination port.</summary>
    public bool IsPortOnly => SrcAddr == UInt128.Zero && DstAddr == UInt128.Zero && SrcPort == 0;

    /// <summary>A key for every datagram to <paramref name="port"/>.</summary>
    public static FlowKey Udp(ushort port) => new(IpProtocol.Udp, port);

    /// <summary>The port-only key of this flow.</summary>
    public FlowKey PortOnly => new(Protocol, DstPort);

    public override string ToString() => IsPortOnly ? $"{Protocol.ToString().ToLowerInvariant()}:{DstPort}" : $"{Protocol.ToString().ToLowerInvariant()} {SrcAddr:x}:{SrcPort} -> {DstAddr:x}:{DstPort}";
}
