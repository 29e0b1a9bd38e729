using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Devmem;

/// <summary>
/// Devmem transmit: <see cref="Connect"/>, <see cref="SendDmabuf(uint, ReadOnlySpan{DmabufIov}, DevmemSendFlags)"/>
/// from a region bound with <see cref="NetDevice.BindDmabufTx"/>, and MSG_ZEROCOPY completions.
/// </summary>
/// <remarks>
/// <para>The checks follow the kernel's TCP devmem send (<c>tcp_sendmsg_locked</c>,
/// <c>net_devmem_get_binding</c>, <c>zerocopy_fill_skb_from_devmem</c>) applied to one datagram:
/// a send from a dmabuf needs <see cref="DevmemSendFlags.ZeroCopy"/> and <see cref="ZeroCopy"/>
/// (EINVAL); the id must name a live TX binding (EINVAL); the binding's device must be the
/// route's (ENODEV); every range must lie inside the region (EFAULT); the datagram may span at
/// most <see cref="DevmemTxPacket.MaxFrags"/> <c>net_iov</c>s and a UDP datagram's size
/// (EMSGSIZE). A refused send changes nothing: no sequence number is used, no reference is kept.</para>
/// <para>Each accepted send takes the next 32-bit sequence number. When the device has read it
/// (or will never send it) a <see cref="ZeroCopyCompletion"/> is queued, in sequence order
/// whatever order the device finished in, for <see cref="ReadCompletions"/>. At most
/// <see cref="MaxTxInFlight"/> sends may be unreported at once; past that a send fails with
/// ENOBUFS until completions are read. Sends still in flight when the socket closes end as the
/// device finishes them; their notifications are dropped, and the counters still add up:
/// <see cref="ZeroCopySends"/> = <see cref="ZeroCopyCompleted"/> + <see cref="ZeroCopyCancelled"/> + <see cref="SendsInFlight"/>.</para>
/// <para>Sends on one socket serialise on its TX lock, which is held while the driver queues
/// the packet; completions take the same lock. Steady-state sends and completions allocate nothing.</para>
/// </remarks>
public sealed partial class DevmemSocket
{
    /// <summary>The default of <see cref="MaxTxInFlight"/>.</summary>
    public const int DefaultMaxTxInFlight = 1024;

    private const byte SlotEmpty = 0;
    private const byte SlotInFlight = 1;
    private const byte SlotDone = 2; // + ZeroCopyCode

    private readonly Lock _txLock = new();
    private readonly ManualResetEventSlim _completionsReady = new(false);

    /// <summary>The sequence number of each window slot, and its state (empty, in flight, done + code).</summary>
    private uint[]? _slotSeq;
    private byte[]? _slotState;

    /// <summary>Queued notifications, a ring of <see cref="MaxTxInFlight"/>.</summary>
    private ZeroCopyCompletion[]? _notes;
    private int _noteHead;
    private int _noteCount;

    /// <summary>The next sequence number to hand out (the kernel's <c>sk_zckey</c>).</summary>
    private uint _zcNext;

    /// <summary>The oldest sequence number not yet reported.</summary>
    private uint _zcOldest;

    private volatile DevmemTxRoute? _route;
    private volatile bool _zeroCopy;

    private long _zcSends;
    private long _zcCompleted;
    private long _zcCopied;
    private long _zcCancelled;
    private long _txBytes;
    private int _txInFlight;

    /// <summary>
    /// <c>SO_ZEROCOPY</c>: the socket may send with <see cref="DevmemSendFlags.ZeroCopy"/>. A
    /// send from a dmabuf is refused (EINVAL) without it. Off by default, as in the kernel.
    /// </summary>
    /// <exception cref="ObjectDisposedException">Setting it on a closed socket.</exception>
    public bool ZeroCopy
    {
        get => _zeroCopy;
        set
        {
            lock (_txLock)
            {
                ObjectDisposedException.ThrowIf(IsClosed, this);
                if (value && _slotSeq is null)
                {
                    _slotSeq = new uint[MaxTxInFlight];
                    _slotState = new byte[MaxTxInFlight];
                    _notes = new ZeroCopyCompletion[MaxTxInFlight];
                }

                _zeroCopy = value;
            }
        }
    }

    /// <summary>Most zero-copy sends that may be in flight or unreported at once (a power of two).</summary>
    public int MaxTxInFlight { get; }

    /// <summary>Where sends go, or null before <see cref="Connect"/>.</summary>
    public DevmemTxRoute? Route => _route;

    /// <summary>Zero-copy sends accepted (each took one sequence number).</summary>
    public long ZeroCopySends => Interlocked.Read(ref _zcSends);

    /// <summary>Sends the device finished reading (<see cref="ZeroCopyCode.ZeroCopy"/> or <see cref="ZeroCopyCode.Copied"/>).</summary>
    public long ZeroCopyCompleted => Interlocked.Read(ref _zcCompleted);

    /// <summary>Of <see cref="ZeroCopyCompleted"/>, those the driver copied first (<see cref="ZeroCopyCode.Copied"/>).</summary>
    public long ZeroCopyCopied => Interlocked.Read(ref _zcCopied);

    /// <summary>Sends that never reached the wire (<see cref="ZeroCopyCode.Cancelled"/>).</summary>
    public long ZeroCopyCancelled => Interlocked.Read(ref _zcCancelled);

    /// <summary>Sends accepted and not yet ended by the device.</summary>
    public int SendsInFlight => Volatile.Read(ref _txInFlight);

    /// <summary>Payload bytes of the accepted sends.</summary>
    public long TxBytes => Interlocked.Read(ref _txBytes);

    /// <summary>Notifications queued and not yet read.</summary>
    public int CompletionsPending
    {
        get
        {
            lock (_txLock)
            {
                return _noteCount;
            }
        }
    }

    /// <summary>
    /// Sets the route of every send: out of <paramref name="device"/>, from
    /// <paramref name="source"/> to <paramref name="destination"/> (a UDP <c>connect</c> with
    /// <c>SO_BINDTODEVICE</c>). May be called again to change it; sends already queued keep theirs.
    /// </summary>
    /// <exception cref="ArgumentException">The endpoints are not both IPv4 or both IPv6, or the destination port is 0.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public void Connect(NetDevice device, IPEndPoint source, IPEndPoint destination)
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        _route = DevmemTxRoute.Create(device, source, destination);
    }

    /// <summary>
    /// Sends one datagram whose payload is <paramref name="iov"/>, ranges of the region bound
    /// for transmit as <paramref name="dmabufId"/> (<c>sendmsg</c> with <c>SCM_DEVMEM_DMABUF</c>).
    /// The device reads the payload from the region; the ranges must stay unchanged until the
    /// send's <see cref="ZeroCopyCompletion"/>.
    /// </summary>
    /// <param name="dmabufId">The TX binding id (<see cref="DmabufBindingHandle.BindingId"/> of a <see cref="NetDevice.BindDmabufTx"/>).</param>
    /// <param name="iov">Region ranges, in payload order.</param>
    /// <param name="flags">Must include <see cref="DevmemSendFlags.ZeroCopy"/>.</param>
    /// <returns>The payload bytes sent (0 for an empty payload, which takes no sequence number).</returns>
    /// <exception cref="NetmemException">The refusal and its errno: see the remarks on the type, and <see cref="INetmemTxOps.Transmit"/> for the device's.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public int SendDmabuf(uint dmabufId, ReadOnlySpan<DmabufIov> iov, DevmemSendFlags flags = DevmemSendFlags.ZeroCopy) =>
        SendDmabuf(dmabufId, iov, flags, out _);

    /// <summary>As <see cref="SendDmabuf(uint, ReadOnlySpan{DmabufIov}, DevmemSendFlags)"/>, returning the send's sequence number.</summary>
    /// <param name="dmabufId">The TX binding id.</param>
    /// <param name="iov">Region ranges, in payload order.</param>
    /// <param name="flags">Must include <see cref="DevmemSendFlags.ZeroCopy"/>.</param>
    /// <param name="sequence">The sequence number its <see cref="ZeroCopyCompletion"/> will cover; 0 and meaningless for an empty payload.</param>
    /// <returns>The payload bytes sent.</returns>
    /// <exception cref="NetmemException">The refusal and its errno.</exception>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public int SendDmabuf(uint dmabufId, ReadOnlySpan<DmabufIov> iov, DevmemSendFlags flags, out uint sequence)
    {
        SendCore(dmabufId, iov, flags, throwOnError: true, out sequence, out int bytes);
        return bytes;
    }

    /// <summary>
    /// As <see cref="SendDmabuf(uint, ReadOnlySpan{DmabufIov}, DevmemSendFlags, out uint)"/>, but
    /// a refusal is returned as its errno instead of thrown, for loops that meet a full queue
    /// (ENOBUFS) often.
    /// </summary>
    /// <param name="dmabufId">The TX binding id.</param>
    /// <param name="iov">Region ranges, in payload order.</param>
    /// <param name="sequence">The send's sequence number when it was accepted.</param>
    /// <param name="flags">Must include <see cref="DevmemSendFlags.ZeroCopy"/>.</param>
    /// <returns>0 when sent (or the payload was empty), otherwise the errno of the refusal.</returns>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public int TrySendDmabuf(uint dmabufId, ReadOnlySpan<DmabufIov> iov, out uint sequence, DevmemSendFlags flags = DevmemSendFlags.ZeroCopy) =>
        SendCore(dmabufId, iov, flags, throwOnError: false, out sequence, out _);

    /// <summary>
    /// Reads queued notifications into <paramref name="completions"/> (<c>recvmsg(MSG_ERRQUEUE)</c>),
    /// oldest first. Returns how many it filled; 0 when none are queued.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The socket is closed.</exception>
    public int ReadCompletions(Span<ZeroCopyCompletion> completions)
    {
        lock (_txLock)
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            ZeroCopyCompletion[]? notes = _notes;
            if (notes is null)
            {
                return 0;
            }

            int n = 0;
            while (true)
            {
                while (n < completions.Length && _noteCount > 0)
                {
                    completions[n++] = notes[_noteHead];
                    _noteHead = (_noteHead + 1) & (notes.Length - 1);
                    _noteCount--;
                }

                // Room in the ring again: report what finished while it was full.
                if (n == completions.Length || !AdvanceLocked())
                {
                    break;
                }
            }

            if (_noteCount == 0)
            {
                _completionsReady.Reset();
            }

            return n;
        }
    }

    /// <summary>Waits until a notification is queued or the socket is closed. False on timeout.</summary>
    /// <param name="timeoutMs">Milliseconds to wait; -1 waits forever.</param>
    public bool WaitCompletions(int timeoutMs) => _completionsReady.Wait(timeoutMs);

    /// <summary>Called by <see cref="DevmemTxPacket"/>: the send <paramref name="sequence"/> ended with <paramref name="code"/>.</summary>
    internal void EndTx(uint sequence, ZeroCopyCode code, int bytes)
    {
        lock (_txLock)
        {
            uint[]? seqs = _slotSeq;
            int i = (int)(sequence & (uint)(MaxTxInFlight - 1));
            if (seqs is null || _slotState![i] != SlotInFlight || seqs[i] != sequence)
            {
                ThrowNotInFlight(sequence);
            }

            _slotState![i] = (byte)(SlotDone + (byte)code);
            _txInFlight--;
            if (code == ZeroCopyCode.Cancelled)
            {
                _zcCancelled++;
            }
            else
            {
                _zcCompleted++;
                if (code == ZeroCopyCode.Copied)
                {
                    _zcCopied++;
                }
            }

            if (AdvanceLocked() && _noteCount > 0 && !_completionsReady.IsSet)
            {
                _completionsReady.Set();
            }
        }
    }

    /// <summary>Socket close: drops the queued notifications; sends in flight still end (and count) as the device finishes them.</summary>
    private void CloseTx()
    {
        lock (_txLock)
        {
            _noteCount = 0;
            AdvanceLocked();
        }

        _completionsReady.Set();
    }

    private int SendCore(uint dmabufId, ReadOnlySpan<DmabufIov> iov, DevmemSendFlags flags, bool throwOnError, out uint sequence, out int bytes)
    {
        sequence = 0;
        bytes = 0;
        ObjectDisposedException.ThrowIf(IsClosed, this);
        if ((flags & DevmemSendFlags.ZeroCopy) == 0 || !_zeroCopy)
        {
            return throwOnError ? ThrowNotZeroCopy(flags) : Errno.EINVAL;
        }

        ulong total = 0;
        foreach (DmabufIov r in iov)
        {
            total += r.Length;
        }

        if (total == 0)
        {
            return 0;
        }

        DevmemTxRoute? route = _route;
        if (route is null)
        {
            return throwOnError ? ThrowNoRoute() : Errno.EDESTADDRREQ;
        }

        ulong maxPayload = route.IsIPv6 ? 65535UL - 8 : 65535UL - 20 - 8;
        if (total > maxPayload)
        {
            return throwOnError ? ThrowTooLarge(total, maxPayload) : Errno.EMSGSIZE;
        }

        DmabufBinding? binding = DmabufBinding.LookupTx(dmabufId);
        if (binding is null)
        {
            return throwOnError ? ThrowUnknownBinding(dmabufId) : Errno.EINVAL;
        }

        try
        {
            NetDevice device = route.Device;
            if (!ReferenceEquals(binding.NetDevice, device) || !device.IsRegistered)
            {
                return throwOnError ? ThrowWrongDevice(binding, device) : Errno.ENODEV;
            }

            DevmemTxFrags frags = default;
            int n = BuildFrags(binding, iov, ref frags, throwOnError);
            if (n < 0)
            {
                return -n;
            }

            if (!device.IsUp || device.TxOps is not { } ops)
            {
                return throwOnError ? ThrowDown(device) : Errno.ENETDOWN;
            }

            lock (_txLock)
            {
                ObjectDisposedException.ThrowIf(IsClosed, this);
                uint seq = _zcNext;
                if (unchecked(seq - _zcOldest) >= (uint)MaxTxInFlight)
                {
                    return throwOnError ? ThrowWindowFull() : Errno.ENOBUFS;
                }

                int i = (int)(seq & (uint)(MaxTxInFlight - 1));
                _slotSeq![i] = seq;
                _slotState![i] = SlotInFlight;
                _txInFlight++;
                _zcSends++;
                _zcNext = seq + 1;
                var packet = new DevmemTxPacket(this, route, binding, seq, in frags, n, (int)total);
                int err;
                try
                {
                    err = ops.Transmit(device, in packet);
                }
                catch
                {
                    UndoSend(i, seq);
                    throw;
                }

                if (err != 0)
                {
                    UndoSend(i, seq);
                    return throwOnError ? ThrowDeviceRefused(err, device, total) : err;
                }

                _txBytes += (long)total;
                binding = null; // the packet holds the reference now
                sequence = seq;
                bytes = (int)total;
                return 0;
            }
        }
        finally
        {
            binding?.Put();
        }
    }

    /// <summary>
    /// Fills <paramref name="frags"/> from the ranges, one fragment per <c>net_iov</c> touched (the
    /// kernel's <c>zerocopy_fill_skb_from_devmem</c>). Returns the count, or minus the errno.
    /// </summary>
    private static unsafe int BuildFrags(DmabufBinding binding, ReadOnlySpan<DmabufIov> iov, ref DevmemTxFrags frags, bool throwOnError)
    {
        ulong regionSize = (ulong)binding.Region.Size;
        int n = 0;
        foreach (DmabufIov r in iov)
        {
            ulong off = r.Offset;
            uint left = r.Length;
            while (left > 0)
            {
                if (n == DevmemTxPacket.MaxFrags)
                {
                    return throwOnError ? ThrowTooManyFrags() : -Errno.EMSGSIZE;
                }

                if (off >= regionSize)
                {
                    return throwOnError ? ThrowOutsideRegion(binding, r) : -Errno.EFAULT;
                }

                NetIovDesc* d = binding.TxNetIovAt(off);
                uint inPage = (uint)(off & (NetmemDesc.BasePageSize - 1));
                uint size = Math.Min((uint)NetmemDesc.BasePageSize - inPage, left);
                frags[n++] = new DevmemTxFrag(d->Common.DmaAddr + inPage, off, (int)size);
                off += size;
                left -= size;
            }
        }

        return n;
    }

    /// <summary>Gives back a sequence number the driver refused. Caller holds <see cref="_txLock"/>; nothing later was handed out.</summary>
    private void UndoSend(int slot, uint seq)
    {
        _slotState![slot] = SlotEmpty;
        _txInFlight--;
        _zcSends--;
        _zcNext = seq;
    }

    /// <summary>
    /// Moves finished sends, oldest first, into the notification ring (merging with the newest
    /// unread notification when it is adjacent and of the same code). Stops at the first send in
    /// flight, or when the ring is full. True when anything moved. Caller holds <see cref="_txLock"/>.
    /// </summary>
    private bool AdvanceLocked()
    {
        byte[]? state = _slotState;
        if (state is null)
        {
            return false;
        }

        bool moved = false;
        int mask = MaxTxInFlight - 1;
        ZeroCopyCompletion[] notes = _notes!;
        while (_zcOldest != _zcNext)
        {
            uint seq = _zcOldest;
            int i = (int)(seq & (uint)mask);
            if (state[i] < SlotDone)
            {
                break;
            }

            var code = (ZeroCopyCode)(state[i] - SlotDone);
            if (!IsClosed)
            {
                if (_noteCount > 0 && notes[(_noteHead + _noteCount - 1) & mask] is var tail
                    && tail.Code == code && tail.Last + 1 == seq && tail.Last + 1 != tail.First)
                {
                    notes[(_noteHead + _noteCount - 1) & mask] = tail with { Last = seq };
                }
                else if (_noteCount < notes.Length)
                {
                    notes[(_noteHead + _noteCount) & mask] = new ZeroCopyCompletion(seq, seq, code);
                    _noteCount++;
                }
                else
                {
                    break;
                }
            }

            state[i] = SlotEmpty;
            _zcOldest = seq + 1;
            moved = true;
        }

        return moved;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotInFlight(uint sequence) =>
        throw new InvalidOperationException(string.Create(CultureInfo.InvariantCulture,
            $"zero-copy send #{sequence} is not in flight: a packet must be completed or cancelled exactly once"));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ThrowNotZeroCopy(DevmemSendFlags flags) =>
        throw new NetmemException(Errno.EINVAL, (flags & DevmemSendFlags.ZeroCopy) == 0
            ? "a send from a dmabuf needs MSG_ZEROCOPY (DevmemSendFlags.ZeroCopy)"
            : $"{this}: a send from a dmabuf needs SO_ZEROCOPY on the socket (set ZeroCopy = true)");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ThrowNoRoute() =>
        throw new NetmemException(Errno.EDESTADDRREQ, $"{this} has no destination: Connect it to a device and an address first");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ThrowTooLarge(ulong total, ulong max) =>
        throw new NetmemException(Errno.EMSGSIZE, string.Create(CultureInfo.InvariantCulture,
            $"{total} payload bytes do not fit in one UDP datagram (at most {max})"));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ThrowUnknownBinding(uint id)
    {
        DmabufBinding? b = id is > 0 and <= int.MaxValue ? DmabufBinding.FromId((int)id) : null;
        string why = b is null ? "no binding has that id"
            : b.Direction != DmabufDirection.Tx ? "it is an rx binding"
            : "it was unbound";
        throw new NetmemException(Errno.EINVAL, string.Create(CultureInfo.InvariantCulture, $"dmabuf id {id} is not a TX binding: {why}"));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ThrowWrongDevice(DmabufBinding binding, NetDevice device) =>
        throw new NetmemException(Errno.ENODEV, !device.IsRegistered
            ? $"{this}: the route's device {device.Name} is not registered"
            : $"{this}: dmabuf binding {binding.Id} is bound to {binding.NetDevice?.Name ?? "no device"}, but the socket's route goes out of {device.Name}; its DMA addresses are reachable only from its own device");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ThrowTooManyFrags() =>
        throw new NetmemException(Errno.EMSGSIZE, string.Create(CultureInfo.InvariantCulture,
            $"the payload spans more than {DevmemTxPacket.MaxFrags} net_iovs (MAX_SKB_FRAGS)"));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int ThrowOutsideRegion(DmabufBinding binding, DmabufIov r) =>
        throw new NetmemException(Errno.EFAULT, string.Create(CultureInfo.InvariantCulture,
            $"range [{r.Offset}, +{r.Length}) is not inside {binding.Region} of dmabuf binding {binding.Id}"));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ThrowDown(NetDevice device) =>
        throw new NetmemException(Errno.ENETDOWN, device.TxOps is null
            ? $"{this}: {device.Name} has no transmit ops"
            : $"{this}: {device.Name} is down");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ThrowWindowFull() =>
        throw new NetmemException(Errno.ENOBUFS, string.Create(CultureInfo.InvariantCulture,
            $"{this}: {MaxTxInFlight} zero-copy sends are in flight or unreported; read completions first"));

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ThrowDeviceRefused(int errno, NetDevice device, ulong total) =>
        throw new NetmemException(errno, errno switch
        {
            Errno.ENOBUFS => $"{this}: {device.Name}'s tx queue is full",
            Errno.EMSGSIZE => string.Create(CultureInfo.InvariantCulture, $"{this}: a {total}-byte payload exceeds {device.Name}'s MTU"),
            Errno.ENETDOWN => $"{this}: {device.Name}'s tx queue is stopped",
            _ => $"{this}: {device.Name} refused the send",
        });
}
