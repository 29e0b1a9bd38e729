using System.Numerics;
using System.Runtime.CompilerServices;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Native;

namespace Netmem.Tool.Relay;

/// <summary>
/// The zero-copy relay's engine: datagrams received on a <see cref="DevmemSocket"/> into a region
/// bound for receive are sent on from the same region fragments through that region's transmit
/// binding, and each fragment's token goes back (<c>DONTNEED</c>) only when the device has read it.
/// </summary>
/// <remarks>
/// <para>One datagram becomes one <see cref="DevmemSocket.TrySendDmabuf"/> whose ranges are its
/// fragments' <see cref="DmabufCmsg.FragOffset"/>/<see cref="DmabufCmsg.FragSize"/>, in order: a
/// region offset is the same through the receive binding and the transmit binding over the same
/// region, so nothing is copied. The payload stays where the device wrote it until the send's
/// <see cref="ZeroCopyCompletion"/>; returning the token earlier would let the rx queue refill
/// those bytes while the device still reads them.</para>
/// <para>Tokens wait in a preallocated FIFO in send order; each send's slot (its sequence number
/// modulo <see cref="DevmemSocket.MaxTxInFlight"/>) holds how many tokens it owns. Completions
/// arrive in sequence order, so completing sends <c>First..Last</c> pops exactly their tokens
/// from the FIFO's head. Nothing is allocated after construction.</para>
/// <para>A datagram that cannot go out zero-copy is not relayed, and its tokens go back at once:
/// one that arrived (wholly or in part) in readable memory, or in a region other than the
/// receive binding's, is counted in <see cref="Unrelayable"/>; one the socket refused with an
/// errno other than ENOBUFS in <see cref="SendFailures"/> (<see cref="LastSendErrno"/>). A send
/// the device cancelled is counted in <see cref="Cancelled"/>. ENOBUFS (the send window or the
/// device's ring is full) is not a failure: the datagram waits, <see cref="Poll"/> returns, and
/// the caller waits for completions (<see cref="IsBlocked"/>).</para>
/// <para>Single-threaded: one thread calls <see cref="Poll"/> and <see cref="Flush"/>; the
/// counters may be read from any thread.</para>
/// </remarks>
public sealed class DevmemRelay
{
    /// <summary>Records taken per receive call.</summary>
    private const int ReceiveBatch = 64;

    /// <summary>Receive batches one <see cref="Poll"/> takes at most (its budget, as a NAPI poll's).</summary>
    private const int PollBudget = 4;

    private readonly DevmemSocket _socket;
    private readonly uint _rxBindingId;
    private readonly uint _txBindingId;

    /// <summary>The receive batch and how far it has been taken.</summary>
    private readonly DmabufCmsg[] _cmsgs = new DmabufCmsg[ReceiveBatch];
    private int _cmsgCount;
    private int _cmsgNext;

    /// <summary>Where the socket copies fragments that arrived in readable memory (not relayed).</summary>
    private readonly byte[] _linear;

    /// <summary>The datagram being assembled: its ranges and tokens, whether any part is unusable, and whether it is whole.</summary>
    private readonly DmabufIov[] _iov = new DmabufIov[RxDelivery.MaxFragments];
    private readonly uint[] _datagramTokens = new uint[RxDelivery.MaxFragments];
    private int _frags;
    private int _tokens;
    private int _records;
    private bool _unusable;
    private bool _ready;

    /// <summary>Tokens of the sends in flight, in send order: a FIFO of a power-of-two size.</summary>
    private readonly uint[] _tokenRing;
    private int _tokenHead;
    private int _tokenCount;

    /// <summary>Tokens each send in flight owns, by sequence number modulo the socket's window.</summary>
    private readonly byte[] _sendTokens;

    private readonly ZeroCopyCompletion[] _notes = new ZeroCopyCompletion[64];
    private readonly uint[] _dontNeed = new uint[DevmemSocket.MaxDontNeedTokens];
    private int _dontNeedCount;

    private long _received;
    private long _fragments;
    private long _multiFragment;
    private long _relayed;
    private long _relayedBytes;
    private long _completed;
    private long _cancelled;
    private long _unrelayable;
    private long _sendFailures;
    private long _blocked;
    private long _linearBytes;
    private int _lastSendErrno;

    /// <param name="socket">The socket datagrams arrive on, with <see cref="DevmemSocket.ZeroCopy"/> on and connected to where they go.</param>
    /// <param name="rxBindingId">The receive binding whose fragments are relayed.</param>
    /// <param name="txBindingId">The transmit binding over the same region (<see cref="Net.DmabufBindingHandle.BindingId"/> of <see cref="Net.NetDevice.BindDmabufTx"/>).</param>
    /// <param name="maxFrame">The largest datagram payload a readable fragment may carry (sizes the buffer the socket copies such fragments into).</param>
    /// <exception cref="ArgumentException">The socket cannot send zero-copy or has no destination.</exception>
    public DevmemRelay(DevmemSocket socket, int rxBindingId, int txBindingId, int maxFrame = 9216)
    {
        ArgumentNullException.ThrowIfNull(socket);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rxBindingId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(txBindingId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxFrame);
        if (!socket.ZeroCopy || socket.Route is null)
        {
            throw new ArgumentException($"{socket} must have ZeroCopy on and be connected before it relays.", nameof(socket));
        }

        _socket = socket;
        _rxBindingId = (uint)rxBindingId;
        _txBindingId = (uint)txBindingId;
        _linear = new byte[ReceiveBatch * maxFrame];
        _tokenRing = new uint[(int)BitOperations.RoundUpToPowerOf2((uint)socket.MaxOutstanding)];
        _sendTokens = new byte[socket.MaxTxInFlight];
    }

    /// <summary>The socket relayed from.</summary>
    public DevmemSocket Socket => _socket;

    /// <summary>Whole datagrams received.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Fragments received (records of either kind).</summary>
    public long Fragments => Interlocked.Read(ref _fragments);

    /// <summary>Of <see cref="Received"/>, datagrams that spanned more than one fragment.</summary>
    public long MultiFragment => Interlocked.Read(ref _multiFragment);

    /// <summary>Datagrams sent on (each one zero-copy send).</summary>
    public long Relayed => Interlocked.Read(ref _relayed);

    /// <summary>Payload bytes of <see cref="Relayed"/>.</summary>
    public long RelayedBytes => Interlocked.Read(ref _relayedBytes);

    /// <summary>Sends the device finished (their tokens went back).</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Sends the device cancelled (never on the wire; their tokens went back).</summary>
    public long Cancelled => Interlocked.Read(ref _cancelled);

    /// <summary>Datagrams not relayed because a part of them is not in the receive binding's region.</summary>
    public long Unrelayable => Interlocked.Read(ref _unrelayable);

    /// <summary>Datagrams not relayed because the socket refused the send (not ENOBUFS).</summary>
    public long SendFailures => Interlocked.Read(ref _sendFailures);

    /// <summary>The errno of the last refused send, 0 when none was.</summary>
    public int LastSendErrno => Volatile.Read(ref _lastSendErrno);

    /// <summary>Times a send met ENOBUFS and had to wait for completions.</summary>
    public long Blocked => Interlocked.Read(ref _blocked);

    /// <summary>
    /// Payload bytes the CPU copied on the relay's path: what the socket copied out of readable
    /// memory into the relay's buffer (0 when every fragment arrived in the region). The relay
    /// itself never reads or writes a payload byte.
    /// </summary>
    public long BytesCopied => Interlocked.Read(ref _linearBytes);

    /// <summary>Tokens held for sends in flight.</summary>
    public int TokensHeld => Volatile.Read(ref _tokenCount);

    /// <summary>True when a whole datagram waits because its send met ENOBUFS: wait for completions.</summary>
    public bool IsBlocked => _ready;

    /// <summary>True when the relay holds nothing: no datagram in hand, no received record untaken, no token.</summary>
    public bool IsIdle => !_ready && _frags == 0 && _records == 0 && _cmsgNext == _cmsgCount && _tokenCount == 0;

    /// <summary>
    /// One pass: returns the tokens of completed sends, then receives and sends on what is
    /// queued, within a budget. Returns the datagrams and completions it handled (0: nothing to do,
    /// or <see cref="IsBlocked"/>).
    /// </summary>
    public int Poll()
    {
        int work = Reap();
        int batches = 0;
        while (true)
        {
            if (_ready)
            {
                if (!SendReady())
                {
                    break;
                }

                work++;
            }

            if (_cmsgNext == _cmsgCount)
            {
                if (batches++ == PollBudget || !ReceiveBatchOf())
                {
                    break;
                }
            }

            Take(in _cmsgs[_cmsgNext++]);
        }

        FlushDontNeed();
        return work;
    }

    /// <summary>
    /// Relays what is left and waits (bounded) until every send completed and every token went
    /// back. True when the relay is idle and the socket has nothing queued or in flight.
    /// </summary>
    public bool Flush(TimeSpan timeout)
    {
        long end = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (true)
        {
            Poll();
            if (IsIdle && _socket.QueuedFragments == 0 && _socket.SendsInFlight == 0 && _socket.CompletionsPending == 0)
            {
                return true;
            }

            if (Environment.TickCount64 > end)
            {
                return false;
            }

            _socket.WaitCompletions(1);
        }
    }

    /// <summary>Reads completions and queues the tokens of the sends they cover for DONTNEED.</summary>
    private int Reap()
    {
        int work = 0;
        int mask = _sendTokens.Length - 1;
        int n;
        while ((n = _socket.ReadCompletions(_notes)) > 0)
        {
            for (int i = 0; i < n; i++)
            {
                ZeroCopyCompletion note = _notes[i];
                long count = note.Count;
                for (uint seq = note.First; count > 0; seq++, count--)
                {
                    ReturnTokens(_sendTokens[(int)(seq & (uint)mask)]);
                }

                if (note.Code == ZeroCopyCode.Cancelled)
                {
                    Interlocked.Add(ref _cancelled, note.Count);
                }
                else
                {
                    Interlocked.Add(ref _completed, note.Count);
                }

                work += (int)note.Count;
            }
        }

        return work;
    }

    /// <summary>Moves the oldest <paramref name="count"/> tokens of the FIFO to the DONTNEED batch.</summary>
    private void ReturnTokens(int count)
    {
        int mask = _tokenRing.Length - 1;
        for (int i = 0; i < count; i++)
        {
            QueueDontNeed(_tokenRing[_tokenHead]);
            _tokenHead = (_tokenHead + 1) & mask;
        }

        Volatile.Write(ref _tokenCount, _tokenCount - count);
    }

    private bool ReceiveBatchOf()
    {
        _cmsgCount = _socket.Receive(_cmsgs, _linear, out int linearBytes);
        _cmsgNext = 0;
        if (linearBytes != 0)
        {
            Interlocked.Add(ref _linearBytes, linearBytes);
        }

        return _cmsgCount != 0;
    }

    /// <summary>Adds one received record to the datagram in hand; a whole datagram becomes ready to send.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Take(in DmabufCmsg c)
    {
        Interlocked.Increment(ref _fragments);
        _records++;
        if (c.Type == DevmemCmsgType.Dmabuf)
        {
            _datagramTokens[_tokens++] = c.FragToken;
            if (c.DmabufId == _rxBindingId && _frags < _iov.Length)
            {
                _iov[_frags++] = new DmabufIov(c.FragOffset, c.FragSize);
            }
            else
            {
                _unusable = true;
            }
        }
        else
        {
            _unusable = true;
        }

        if (c.IsEndOfPacket)
        {
            _ready = true;
        }
    }

    /// <summary>Sends the datagram in hand. False when it met ENOBUFS and still waits.</summary>
    private bool SendReady()
    {
        long bytes = 0;
        for (int i = 0; i < _frags; i++)
        {
            bytes += _iov[i].Length;
        }

        // An empty send takes no sequence number, so it could not own its tokens: never sent.
        if (_unusable || bytes == 0)
        {
            Interlocked.Increment(ref _unrelayable);
            DropDatagram();
            return true;
        }

        int err = _socket.TrySendDmabuf(_txBindingId, _iov.AsSpan(0, _frags), out uint seq);
        if (err == Errno.ENOBUFS)
        {
            Interlocked.Increment(ref _blocked);
            return false;
        }

        if (err != 0)
        {
            Volatile.Write(ref _lastSendErrno, err);
            Interlocked.Increment(ref _sendFailures);
            DropDatagram();
            return true;
        }

        int mask = _tokenRing.Length - 1;
        for (int i = 0; i < _tokens; i++)
        {
            _tokenRing[(_tokenHead + _tokenCount + i) & mask] = _datagramTokens[i];
        }

        _sendTokens[(int)(seq & (uint)(_sendTokens.Length - 1))] = (byte)_tokens;
        Volatile.Write(ref _tokenCount, _tokenCount + _tokens);

        Interlocked.Increment(ref _relayed);
        Interlocked.Add(ref _relayedBytes, bytes);
        EndDatagram();
        return true;
    }

    /// <summary>A datagram that is not sent: its tokens go back now.</summary>
    private void DropDatagram()
    {
        for (int i = 0; i < _tokens; i++)
        {
            QueueDontNeed(_datagramTokens[i]);
        }

        EndDatagram();
    }

    private void EndDatagram()
    {
        Interlocked.Increment(ref _received);
        if (_records > 1)
        {
            Interlocked.Increment(ref _multiFragment);
        }

        _records = 0;
        _frags = 0;
        _tokens = 0;
        _unusable = false;
        _ready = false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void QueueDontNeed(uint token)
    {
        _dontNeed[_dontNeedCount++] = token;
        if (_dontNeedCount == _dontNeed.Length)
        {
            FlushDontNeed();
        }
    }

    private void FlushDontNeed()
    {
        if (_dontNeedCount != 0)
        {
            _socket.DontNeed(_dontNeed.AsSpan(0, _dontNeedCount));
            _dontNeedCount = 0;
        }
    }
}
