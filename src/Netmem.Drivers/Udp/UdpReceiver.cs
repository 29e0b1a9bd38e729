using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Netmem.Devmem;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Drivers.Udp;

/// <summary>
/// Receives UDP datagrams on an ordinary socket (no root needed) into page-pool memory: system
/// pages, or the <c>net_iov</c>s of a bound <see cref="DmabufRegion"/>. The kernel's socket stack
/// consumes the headers and writes each payload into a pool buffer; a receive hands out a batch
/// of <see cref="UdpDatagram"/> records and allocates nothing on the GC heap; returning a record
/// gives its buffer back to the pool, which feeds the kernel again.
/// </summary>
/// <remarks>
/// <para><b>Paths.</b> With io_uring (Linux 6.0+) one multishot <c>IORING_OP_RECVMSG</c> runs over
/// a provided-buffer ring that the pool refills in bulk (see <c>UdpUringPath</c> for how buffer
/// ids, the ring and the pool meet). Where io_uring is unavailable (an old kernel,
/// <c>kernel.io_uring_disabled</c>, a seccomp filter answering EPERM or ENOSYS) the receiver
/// falls back to <c>recvmmsg</c> batches into the same pool memory and says so in
/// <see cref="Path"/> and <see cref="FallbackReason"/>. <see cref="UdpReceiverOptions.Path"/>
/// forces either.</para>
/// <para><b>Threads.</b> One receive runs at a time (a second concurrent call is refused); it
/// runs inside the consumer section, a flag taken with one compare-and-swap per batch, which
/// makes it the pool's consumer for that batch. Records may be returned from any thread: a
/// return that finds the section free takes it and recycles straight into the pool's alloc
/// cache; otherwise the netmem goes to the pool's ring and its token to a lock-free ring, both
/// drained by the next receive. <see cref="ReceiveAsync"/> that finds nothing ready hands the
/// wait to one dedicated thread per receiver, which blocks in the kernel and completes the
/// returned <see cref="ValueTask{TResult}"/>; cancellation and <see cref="Dispose"/> wake it
/// through an eventfd.</para>
/// <para><b>Closing.</b> <see cref="Dispose"/> wakes a blocked receive (which throws
/// <see cref="ObjectDisposedException"/>), cancels the kernel's requests and waits for their last
/// completions, gives every posted buffer and every record still held back to the pool, and
/// destroys the pool: nothing stays in flight. A record returned after that is refused, as the
/// pool refuses a double return.</para>
/// </remarks>
public sealed unsafe partial class UdpReceiver : IDisposable
{
    private readonly UdpReceiverOptions _options;
    private readonly int _fd;
    private readonly int _eventFd;
    private readonly PagePool _pool;
    private readonly UdpHeldRecords _held;
    private readonly UdpPathBase _path;
    private readonly DmabufRegion? _region;
    private readonly DmaDevice? _dma;
    private readonly DmabufBinding? _binding;
    private readonly AsyncReceive _async;

    /// <summary>1 while a receive or a direct return runs as the pool's consumer.</summary>
    private int _section;

    private int _disposed;

    private long _datagrams;
    private long _bytes;
    private long _truncated;
    private long _exhausted;
    private long _arms;
    private long _otherTerminations;
    private long _kernelDrops;
    private long _batches;
    private long _discardedAtClose;
    private long _coalesced;

    /// <summary>The smallest page order <see cref="UdpReceiverOptions.Gro"/> uses: 128 KiB holds a 65,535-byte aggregate and its headers.</summary>
    internal const int GroOrder = 5;

    /// <summary>A coalesced buffer whose datagrams did not all fit the caller's batch: the rest are delivered first next time.</summary>
    private Aggregate _pending;

    /// <summary>Opens, configures and binds the socket, creates the pool and posts its buffers.</summary>
    /// <exception cref="NetmemException">
    /// EADDRINUSE: the address is taken (the message says how to share it); EOPNOTSUPP: the region
    /// is device-only; the errno of io_uring's refusal when <see cref="UdpReceivePath.IoUring"/> is forced.
    /// </exception>
    public UdpReceiver(UdpReceiverOptions? options = null)
    {
        _options = options ?? new UdpReceiverOptions();
        Validate(_options);
        IPEndPoint ep = _options.LocalEndpoint;
        Name = _options.Name ?? "udp-" + ep.Port.ToString(CultureInfo.InvariantCulture);
        _region = _options.Region;
        if (_region is { IsCpuMapped: false })
        {
            throw new NetmemException(Errno.EOPNOTSUPP,
                $"{Name}: {_region} is device-only; the kernel copies UDP payloads with the CPU, so it can receive only into CPU-mapped memory");
        }

        if (_region is not null && _options.Gro)
        {
            throw new NetmemException(Errno.EOPNOTSUPP,
                $"{Name}: Gro needs buffers of 128 KiB (a coalesced buffer reaches 65,535 bytes); {_region} gives 4 KiB net_iovs; receive into it without Gro");
        }

        _fd = -1;
        _eventFd = -1;
        try
        {
            _fd = OpenSocket(_options, Name);
            LocalEndpoint = UdpSocketNative.GetSockName(_fd);
            _eventFd = UdpSocketNative.EventFd();
            var napi = new NapiContext(Name + "-napi");
            RxQueue? rxq = null;
            if (_region is not null)
            {
                _dma = new DmaDevice(Name + "-dma");
                _binding = DmabufBinding.Create(_region, _dma);
                rxq = new RxQueue(0, napi) { MemoryProvider = new DevmemProvider(_binding) };
            }

            int posted = Math.Max(_options.BufferRingEntries, _options.RecvMmsgBatch);
            _pool = new PagePool(new PagePoolParams
            {
                Name = Name,
                Napi = napi,
                Queue = rxq,
                Order = _options.Gro ? Math.Max(_options.BufferOrder, GroOrder) : _options.BufferOrder,
                PoolSize = (int)Math.Min(PagePool.MaxPoolSize, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(posted * 2))),
                Flags = PagePoolFlags.DmaMap | (_region is null ? PagePoolFlags.None : PagePoolFlags.AllowUnreadableNetmem),
                Arena = _options.Arena,
            });
            _held = new UdpHeldRecords(_options.MaxHeld);
            _path = CreatePath(out string? reason);
            FallbackReason = reason;
            _async = new AsyncReceive(this);
        }
        catch
        {
            _pool?.Dispose();
            _binding?.Put();
            if (_eventFd >= 0)
            {
                _ = Libc.Close(_eventFd);
            }

            if (_fd >= 0)
            {
                _ = Libc.Close(_fd);
            }

            throw;
        }
    }

    /// <summary>The name used for the pool and in messages.</summary>
    public string Name { get; }

    /// <summary>The bound address (with the port the kernel chose when port 0 was asked).</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>The path this receiver runs: <see cref="UdpReceivePath.IoUring"/> or <see cref="UdpReceivePath.RecvMmsg"/>.</summary>
    public UdpReceivePath Path => _path.Kind;

    /// <summary>Why io_uring was not used when <see cref="UdpReceivePath.Auto"/> fell back to recvmmsg; null otherwise.</summary>
    public string? FallbackReason { get; }

    /// <summary>The pool whose netmems hold the payloads.</summary>
    public PagePool Pool => _pool;

    /// <summary>The region receiving the payloads, or null for system pages.</summary>
    public DmabufRegion? Region => _region;

    /// <summary>The binding id of <see cref="Region"/> (as netmems carry it), 0 for system pages.</summary>
    public int BindingId => _binding?.Id ?? 0;

    /// <summary>The largest payload one buffer takes whole; longer datagrams arrive <see cref="UdpDatagram.Truncated"/>.</summary>
    public int MaxPayload => _path.BufferCapacity;

    /// <summary>The socket's descriptor (for a caller's own socket options).</summary>
    public int SocketFd => _fd;

    /// <summary>True once <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>Records the caller holds now.</summary>
    public int Held => _held.Held;

    /// <summary>The receiver's counters and the kernel's drop counter.</summary>
    public UdpReceiverStats GetStats() => new()
    {
        Path = _path.Kind,
        Datagrams = Volatile.Read(ref _datagrams),
        Bytes = Volatile.Read(ref _bytes),
        Truncated = Volatile.Read(ref _truncated),
        BufferRingExhausted = Volatile.Read(ref _exhausted),
        Arms = Volatile.Read(ref _arms),
        OtherTerminations = Volatile.Read(ref _otherTerminations),
        KernelDrops = Volatile.Read(ref _kernelDrops),
        Batches = Volatile.Read(ref _batches),
        DiscardedAtClose = Volatile.Read(ref _discardedAtClose),
        Coalesced = Volatile.Read(ref _coalesced),
        Held = _held.Held,
    };

    /// <summary>
    /// Takes the datagrams that are ready now, up to <paramref name="batch"/>.Length, without
    /// blocking. Returns how many records it wrote (0 when none is ready).
    /// </summary>
    /// <exception cref="InvalidOperationException">Another receive is running.</exception>
    /// <exception cref="ObjectDisposedException">The receiver was disposed.</exception>
    public int TryReceive(Span<UdpDatagram> batch)
    {
        EnterReceive();
        try
        {
            return PollLocked(batch);
        }
        finally
        {
            ExitSection();
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> (-1: no limit) for at least one datagram and
    /// takes those ready, up to <paramref name="batch"/>.Length. Returns how many (0 on timeout).
    /// </summary>
    /// <exception cref="NetmemException">ENOBUFS: the caller holds <see cref="UdpReceiverOptions.MaxHeld"/> records, or the pool has no memory to post.</exception>
    /// <exception cref="ObjectDisposedException">The receiver was disposed, before or during the wait.</exception>
    public int Receive(Span<UdpDatagram> batch, int timeoutMs = -1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(timeoutMs, -1);
        EnterReceive();
        try
        {
            return ReceiveLocked(batch, timeoutMs, CancellationToken.None);
        }
        finally
        {
            ExitSection();
        }
    }

    /// <summary>
    /// Waits for at least one datagram without blocking a thread of the caller's and takes those
    /// ready, up to <paramref name="batch"/>.Length. Completes synchronously when datagrams are
    /// already there. One call at a time.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="ObjectDisposedException">The receiver was disposed.</exception>
    public ValueTask<int> ReceiveAsync(Memory<UdpDatagram> batch, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        return _async.Start(batch, cancellationToken);
    }

    /// <summary>
    /// Hands a record's buffer back to the pool (and from there to the kernel). Any thread.
    /// </summary>
    /// <exception cref="PagePoolMisuseException">The record was already returned, or the receiver took it back at dispose.</exception>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Return(in UdpDatagram datagram)
    {
        NetmemRef netmem = datagram.Netmem;
        if (!_held.TryRelease(datagram.Token, netmem))
        {
            ThrowReturnMisuse(datagram);
        }

        if (TryEnterSection())
        {
            _pool.RecycleDirect(netmem);
            _held.FreeLocal(datagram.Token);
            ExitSection();
        }
        else
        {
            _pool.PutNetmem(netmem, -1, allowDirect: false);
            _held.FreeRemote(datagram.Token);
        }
    }

    /// <summary>
    /// Hands back every record in <paramref name="batch"/> (empty records are skipped). Each is
    /// checked and returned in order; a misuse throws at that record, after the earlier ones went back.
    /// </summary>
    public void Return(ReadOnlySpan<UdpDatagram> batch)
    {
        bool direct = TryEnterSection();
        try
        {
            foreach (ref readonly UdpDatagram d in batch)
            {
                if (d.IsEmpty)
                {
                    continue;
                }

                if (!_held.TryRelease(d.Token, d.Netmem))
                {
                    ThrowReturnMisuse(d);
                }

                if (direct)
                {
                    _pool.RecycleDirect(d.Netmem);
                    _held.FreeLocal(d.Token);
                }
                else
                {
                    _pool.PutNetmem(d.Netmem, -1, allowDirect: false);
                    _held.FreeRemote(d.Token);
                }
            }
        }
        finally
        {
            if (direct)
            {
                ExitSection();
            }
        }
    }

    /// <summary>
    /// The payload of <paramref name="datagram"/>: a span of the page, or of the region read
    /// through <see cref="DmabufRegion.ReadNetIov"/>. Valid until the record is returned.
    /// </summary>
    public ReadOnlySpan<byte> GetPayload(in UdpDatagram datagram) =>
        datagram.Netmem.IsNetIov && _region is not null
            ? _region.ReadNetIov(datagram.Netmem, datagram.Offset, datagram.Length)
            : datagram.Payload;

    /// <summary>Stops receiving and gives every buffer back (see the remarks on the type).</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _path.Wake();
        _async.Stop();
        SpinWait spin = default;
        while (!TryEnterSection())
        {
            _path.Wake();
            spin.SpinOnce(sleep1Threshold: 20);
        }

        try
        {
            DropPending();
            _path.Shutdown();
            _held.ReclaimAll(_pool);
        }
        finally
        {
            _path.Dispose();
            _pool.Dispose();
            _binding?.Put();
            _held.Dispose();
            _ = Libc.Close(_eventFd);
            _ = Libc.Close(_fd);
            ExitSection();
        }
    }

    /// <inheritdoc/>
    public override string ToString() => $"UdpReceiver '{Name}' on {LocalEndpoint} ({Path})";

    // ---- consumer section ----

    private const int SectionFree = 0;
    private const int SectionReturn = 1;
    private const int SectionReceive = 2;

    /// <summary>Takes the section for a receive: waits out a return's few instructions, refuses a second receive.</summary>
    private void EnterReceive()
    {
        ThrowIfDisposed();
        SpinWait spin = default;
        while (true)
        {
            int seen = Interlocked.CompareExchange(ref _section, SectionReceive, SectionFree);
            if (seen == SectionFree)
            {
                break;
            }

            if (seen == SectionReceive)
            {
                ThrowBusy();
            }

            spin.SpinOnce(sleep1Threshold: -1);
        }

        if (IsDisposed)
        {
            ExitSection();
            ThrowIfDisposed();
        }
    }

    /// <summary>Takes the section for a return (or for dispose); false when a receive or another return holds it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryEnterSection() => Interlocked.CompareExchange(ref _section, SectionReturn, SectionFree) == SectionFree;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ExitSection() => Volatile.Write(ref _section, SectionFree);

    /// <summary>Inside the section: take what is ready.</summary>
    private int PollLocked(Span<UdpDatagram> batch)
    {
        int limit = _held.Available();
        if (limit == 0 || batch.IsEmpty)
        {
            return 0;
        }

        int n = _pending.Left != 0 ? DrainPending(batch, limit) : 0;
        if (n < batch.Length && n < limit)
        {
            n += _path.Poll(batch[n..], limit - n);
        }

        if (n != 0)
        {
            _batches++;
        }

        return n;
    }

    /// <summary>Inside the section: wait for at least one datagram, the deadline, a wake-up for cancel, or dispose.</summary>
    private int ReceiveLocked(Span<UdpDatagram> batch, int timeoutMs, CancellationToken ct)
    {
        long deadline = timeoutMs < 0 ? long.MaxValue : Environment.TickCount64 + timeoutMs;
        while (true)
        {
            int n = PollLocked(batch);
            if (n != 0 || batch.IsEmpty)
            {
                return n;
            }

            ThrowIfDisposed();
            ct.ThrowIfCancellationRequested();
            if (_held.Available() == 0)
            {
                throw new NetmemException(Errno.ENOBUFS,
                    $"{Name}: the caller holds {_held.Capacity} records (MaxHeld); return some before receiving more");
            }

            if (!_path.HasPostedBuffers)
            {
                throw new NetmemException(Errno.ENOBUFS,
                    $"{Name}: {_pool} has no memory to post to the kernel while the caller holds {_held.Held} records; return some");
            }

            long left = deadline == long.MaxValue ? -1 : deadline - Environment.TickCount64;
            if (left == 0 || left < -1)
            {
                return 0;
            }

            _path.Wait((int)Math.Min(left, int.MaxValue));
        }
    }

    // ---- called by the paths, inside the section ----

    /// <summary>The CPU address the kernel writes a buffer at: the page, or the region's memory behind a net_iov.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal nint BufferAddress(NetmemRef netmem) =>
        netmem.IsNetIov ? (nint)_region!.DeviceAddress((long)netmem.RegionOffset) : netmem.PageAddress;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal UdpDatagram MakeRecord(NetmemRef netmem, nint buffer, int offset, int copied, int original, in SockAddr source, bool truncated)
    {
        int token = _held.Take(netmem);
        _datagrams++;
        _bytes += copied;
        if (truncated)
        {
            _truncated++;
        }

        return new UdpDatagram(netmem, netmem.IsNetIov ? 0 : buffer + offset, offset, copied, Math.Max(original, copied), new UdpEndpoint(source), token, truncated);
    }

    /// <summary>
    /// Turns one received buffer into records: one, or with <see cref="UdpReceiverOptions.Gro"/>
    /// one per datagram the kernel coalesced (<paramref name="segment"/> bytes each, the last
    /// possibly shorter). Each record of a coalesced buffer holds its own pool reference. Writes
    /// at most <paramref name="limit"/> records into <paramref name="dest"/> (at least one, unless
    /// nothing of a coalesced buffer was copied); the rest wait in <see cref="_pending"/> for the
    /// next receive. Returns how many it wrote.
    /// </summary>
    internal int DeliverReceived(NetmemRef netmem, nint buffer, int offset, int copied, int original, in SockAddr source, bool truncated, int segment, Span<UdpDatagram> dest, int limit)
    {
        if (segment <= 0 || original <= segment)
        {
            dest[0] = MakeRecord(netmem, buffer, offset, copied, original, source, truncated);
            return 1;
        }

        // Datagrams wholly past what was copied are lost with the cut (the kernel's MSG_TRUNC);
        // the order-5 buffers Gro uses hold any aggregate, so this is for a smaller buffer only.
        int parts = (int)(((long)copied + segment - 1) / segment);
        _truncated += (int)((((long)original + segment - 1) / segment) - parts);
        if (parts == 0)
        {
            _pool.RecycleDirect(netmem);
            return 0;
        }

        _coalesced++;
        _pool.FragmentNetmem(netmem, parts);
        _pending = new Aggregate
        {
            Netmem = netmem,
            Buffer = buffer,
            Next = offset,
            End = offset + copied,
            OriginalEnd = offset + original,
            Segment = segment,
            Source = source,
            Left = parts,
        };
        return DrainPending(dest, limit);
    }

    /// <summary>Hands out the waiting datagrams of a coalesced buffer, up to the batch or the limit.</summary>
    private int DrainPending(Span<UdpDatagram> dest, int limit)
    {
        ref Aggregate a = ref _pending;
        int n = 0;
        while (a.Left != 0 && n < dest.Length && n < limit)
        {
            int len = Math.Min(a.Segment, a.End - a.Next);
            int original = Math.Min(a.Segment, a.OriginalEnd - a.Next);
            dest[n++] = MakeRecord(a.Netmem, a.Buffer, a.Next, len, original, a.Source, len < original);
            a.Next += len;
            a.Left--;
        }

        if (a.Left == 0)
        {
            a = default;
        }

        return n;
    }

    /// <summary>Closing: the references of datagrams never handed out go back to the pool.</summary>
    private void DropPending()
    {
        for (; _pending.Left != 0; _pending.Left--)
        {
            _pool.RecycleDirect(_pending.Netmem);
            _discardedAtClose++;
        }

        _pending = default;
    }

    /// <summary>What is left of a coalesced buffer.</summary>
    private struct Aggregate
    {
        public NetmemRef Netmem;
        public nint Buffer;
        public int Next;
        public int End;
        public int OriginalEnd;
        public int Segment;
        public SockAddr Source;
        public int Left;
    }

    internal void NoteKernelDrops(long counter)
    {
        if (counter > _kernelDrops)
        {
            _kernelDrops = counter;
        }
    }

    internal void CountTermination(bool noBuffers)
    {
        if (noBuffers)
        {
            _exhausted++;
        }
        else
        {
            _otherTerminations++;
        }
    }

    internal void CountArm() => _arms++;

    internal void CountDiscardedAtClose() => _discardedAtClose++;

    internal void NoteShutdownIncomplete() =>
        Diagnostics.NetmemEventSource.Log.PagePoolStalledShutdown(_pool.Id, _pool.Inflight, 0);

    // ---- setup ----

    private static void Validate(UdpReceiverOptions o)
    {
        ArgumentNullException.ThrowIfNull(o.LocalEndpoint);
        int n = o.BufferRingEntries;
        if (n < 1 || n > IoUringAbi.MaxBufRingEntries || (n & (n - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(o), n, "BufferRingEntries must be a power of two in 1..32768");
        }

        if (o.RecvMmsgBatch < 1 || o.RecvMmsgBatch > 1024)
        {
            throw new ArgumentOutOfRangeException(nameof(o), o.RecvMmsgBatch, "RecvMmsgBatch must be in 1..1024");
        }

        if (o.MaxHeld < 1 || o.MaxHeld > (1 << 22))
        {
            throw new ArgumentOutOfRangeException(nameof(o), o.MaxHeld, "MaxHeld must be in 1..4194304");
        }

        if (o.LocalEndpoint.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6))
        {
            throw new ArgumentException($"{o.LocalEndpoint} is neither IPv4 nor IPv6", nameof(o));
        }
    }

    private static int OpenSocket(UdpReceiverOptions o, string name)
    {
        IPEndPoint ep = o.LocalEndpoint;
        int fd = UdpSocketNative.Socket(ep.AddressFamily);
        try
        {
            if (o.ReusePort)
            {
                UdpSocketNative.SetInt(fd, UdpSocketNative.SOL_SOCKET, UdpSocketNative.SO_REUSEPORT, 1, "SO_REUSEPORT");
            }

            UdpSocketNative.SetInt(fd, UdpSocketNative.SOL_SOCKET, UdpSocketNative.SO_RXQ_OVFL, 1, "SO_RXQ_OVFL");
            if (o.Gro)
            {
                UdpSocketNative.SetInt(fd, UdpSocketNative.IPPROTO_UDP, UdpSocketNative.UDP_GRO, 1, "UDP_GRO");
            }

            if (o.ReceiveBufferBytes > 0
                && !UdpSocketNative.TrySetInt(fd, UdpSocketNative.SOL_SOCKET, UdpSocketNative.SO_RCVBUFFORCE, o.ReceiveBufferBytes))
            {
                // Without CAP_NET_ADMIN the kernel caps SO_RCVBUF at net.core.rmem_max.
                UdpSocketNative.SetInt(fd, UdpSocketNative.SOL_SOCKET, UdpSocketNative.SO_RCVBUF, o.ReceiveBufferBytes, "SO_RCVBUF");
            }

            int errno = UdpSocketNative.Bind(fd, ep);
            if (errno == Errno.EADDRINUSE)
            {
                throw new NetmemException(Errno.EADDRINUSE, o.ReusePort
                    ? $"{name}: cannot bind UDP {ep}: address already in use by a socket without SO_REUSEPORT (or of another user); every receiver sharing a port needs ReusePort"
                    : $"{name}: cannot bind UDP {ep}: address already in use; pick another port, or set ReusePort on every receiver that shares it");
            }

            if (errno != 0)
            {
                throw new NetmemException(errno, $"{name}: cannot bind UDP {ep}: {Errno.Describe(errno)}");
            }

            return fd;
        }
        catch
        {
            _ = Libc.Close(fd);
            throw;
        }
    }

    private UdpPathBase CreatePath(out string? fallbackReason)
    {
        fallbackReason = null;
        if (_options.Path != UdpReceivePath.RecvMmsg)
        {
            try
            {
                return new UdpUringPath(this, _options.BufferRingEntries, _eventFd, _options.SimulatedUringErrno);
            }
            catch (NativeException e) when (UdpUringPath.IsUnavailable(e.ErrorNumber))
            {
                if (_options.Path == UdpReceivePath.IoUring)
                {
                    throw new NetmemException(e.ErrorNumber, $"{Name}: io_uring is unavailable ({e.Message}); use UdpReceivePath.Auto or RecvMmsg to fall back to recvmmsg");
                }

                fallbackReason = e.Message;
            }
        }

        return new UdpMmsgPath(this, _options.RecvMmsgBatch, _eventFd);
    }

    // ---- errors ----

    private void ThrowIfDisposed()
    {
        if (IsDisposed)
        {
            ThrowDisposed();
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposed() => throw new ObjectDisposedException(ToString(), $"{this} was disposed.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBusy() => throw new InvalidOperationException($"{this}: another receive is running; one receive at a time.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowReturnMisuse(in UdpDatagram d)
    {
        if (d.Netmem.IsNull)
        {
            throw new PagePoolMisuseException(PagePoolMisuse.NullRef, _pool.Name, d.Netmem, $"{this}: cannot return an empty datagram record.");
        }

        if (IsDisposed)
        {
            throw new PagePoolMisuseException(PagePoolMisuse.PutAfterZero, _pool.Name, d.Netmem,
                $"{this}: record {d.Token} ({d.Netmem}) returned after the receiver was disposed; its buffer already went back to {_pool}.");
        }

        throw new PagePoolMisuseException(PagePoolMisuse.DoublePut, _pool.Name, d.Netmem,
            $"{this}: record {d.Token} ({d.Netmem}) is not held: it was already returned.");
    }
}
