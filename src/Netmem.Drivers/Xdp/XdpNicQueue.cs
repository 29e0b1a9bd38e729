using System.Diagnostics;
using System.Runtime.CompilerServices;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Native;

namespace Netmem.Drivers.Xdp;

/// <summary>
/// One XdpNic rx queue: an AF_XDP socket bound to the interface's queue of the same index, and
/// the poll loop that takes frames off its rx ring and keeps its fill ring stocked.
/// </summary>
/// <remarks>
/// <para>The socket lives while the queue runs: <see cref="OnStarting"/> creates it on the
/// memory's UMEM and binds it, and the loop puts it in the program's map once the fill ring is
/// stocked; <see cref="OnStopping"/> takes it out of the map and lets the loop drain what the
/// kernel already put in the rx ring, and once the loop has parked <see cref="OnStopped"/> closes
/// it (the kernel unbinds it and stops writing into the UMEM before close returns) and takes back
/// every chunk that was still the kernel's. A queue restart therefore swaps the UMEM with the
/// memory, as a NIC swaps its descriptor rings. While no socket is in the map the program passes
/// the queue's frames to the kernel's stack.</para>
/// <para>Bound queue: the fill ring is stocked from the payload pool (<c>AllocBulk</c>, provider
/// <c>net_iov</c>s), each entry the <c>net_iov</c>'s region offset. A received frame's headers are
/// parsed where the kernel wrote them and copied to a header-pool buffer; its payload stays in the
/// chunk and goes to the socket as a fragment at (chunk offset + headroom + header length). A
/// frame not delivered returns its <c>net_iov</c> to the pool at once.</para>
/// <para>Unbound queue: the UMEM is the driver's; each frame is delivered by copy through
/// <see cref="RxDelivery"/> (readable pages, linear data for the socket) and its chunk goes
/// straight back to the fill ring.</para>
/// <para>Transmit (bound queue): the socket also has a tx ring and a completion ring. On its
/// first poll the loop takes the chunks for header slots (<see cref="XdpNicOptions.TxFrames"/>)
/// from the payload pool, before any reaches the fill ring, and publishes an
/// <see cref="XdpTxPort"/> for <see cref="XdpNicTxQueue"/>; stopping takes the port away and
/// drains it before the socket closes, and the chunks go back to the pool once it has.</para>
/// <para>A fault in a frame's receive step is <see cref="NapiPollThread"/>'s to catch and count;
/// <see cref="DropFrameInHand"/> gives back the <c>net_iov</c> the frame held and the burst goes
/// on after it. The type is public only as <see cref="XdpNic"/>'s base type argument; everything
/// on it beyond <see cref="NapiPollThread"/> is internal.</para>
/// </remarks>
public sealed unsafe class XdpNicQueue : NapiPollThread
{
    private const int Budget = 64;

    private readonly XdpNic _nic;
    private readonly NetmemRef[] _allocScratch = new NetmemRef[Budget];
    private XskSocket? _xsk;

    /// <summary>Whether the socket now running is in the program's map (set by the poll loop).</summary>
    private bool _inMap;

    /// <summary>Rx-ring entries of the burst in hand (read, not yet released); 0 when none.</summary>
    private uint _burst;

    /// <summary>The next entry of the burst to process: the frame in hand while one is being received.</summary>
    private uint _next;

    /// <summary>True while a frame of the burst is being received; a fault then drops that frame.</summary>
    private bool _frameInHand;

    /// <summary>Bound queues: the <c>net_iov</c> the frame in hand came in, until it is recycled or in the datagram in hand.</summary>
    private NetmemRef _netIovInHand;

    /// <summary>Kernel counters of sockets this queue closed (a restart starts a new socket at zero).</summary>
    private XskStatistics _closedStats;

    /// <summary>Bound queues: the socket has a tx ring and the poll loop has yet to reserve its chunks and publish the port.</summary>
    private bool _txPortDue;

    /// <summary>The transmit side of the bound socket now running, or null (read by the tx queue's thread).</summary>
    private volatile XdpTxPort? _txPort;

    /// <summary>The UMEM chunks (payload-pool <c>net_iov</c>s) reserved for the port, held off the fill ring until the socket closes.</summary>
    private NetmemRef[] _txChunks = [];

    /// <summary>Set by <see cref="HoldPolling"/>: the loop keeps the fill ring stocked but takes nothing off the rx ring.</summary>
    private volatile bool _holdRequested;

    /// <summary>Set by the loop once it saw <see cref="_holdRequested"/>: no burst is in hand and none will be taken.</summary>
    private readonly ManualResetEventSlim _holding = new(false);

    /// <summary>What a held loop waits on between polls (set while not held).</summary>
    private readonly ManualResetEventSlim _resume = new(true);

    private long _pollWaits;

    internal XdpNicQueue(XdpNic nic, int index, int? pinCpu)
        : base(nic.Device, index, pinCpu)
    {
        _nic = nic;
    }

    /// <summary>The transmit side of the socket now running; null while stopped, unbound, or before the loop reserved its chunks.</summary>
    internal XdpTxPort? TxPort => _txPort;

    /// <summary>Chunks reserved for transmit and not yet returned to the payload pool.</summary>
    internal int TxChunksHeld => _txChunks.Length;

    /// <summary>The mode of the socket now bound, or null while stopped.</summary>
    internal XskMode? Mode => _xsk?.Mode;

    /// <summary>Times the loop found nothing to do and blocked in <c>poll(2)</c> on the socket: the rx side's wakeups.</summary>
    internal long PollWaits => Volatile.Read(ref _pollWaits);

    /// <summary>Frames in the socket's rx ring that the loop has not taken yet (0 while stopped).</summary>
    internal uint RxQueued => _xsk?.Rx.Outstanding ?? 0;

    /// <summary>Chunks posted in the fill ring for the kernel to receive into (0 while stopped).</summary>
    internal uint FillPosted => _xsk?.Fill.Outstanding ?? 0;

    /// <summary>
    /// Holds the poll loop (for measurements of the receive path alone): it keeps the fill ring
    /// stocked and the socket in the map, so the kernel goes on placing frames in the rx ring,
    /// but takes none off it until <see cref="ResumePolling"/>. Returns once the loop has no
    /// burst in hand. A queue stop ends the hold.
    /// </summary>
    /// <exception cref="NetmemException">EBUSY: the loop did not acknowledge within 30 s.</exception>
    internal void HoldPolling()
    {
        _resume.Reset();
        _holdRequested = true;
        if (!_holding.Wait(TimeSpan.FromSeconds(30)))
        {
            throw new NetmemException(Errno.EBUSY, $"{this}: poll loop did not hold");
        }
    }

    /// <summary>Lets a held loop take frames again.</summary>
    internal void ResumePolling()
    {
        _holdRequested = false;
        _holding.Reset();
        _resume.Set();
    }

    /// <summary>Frames the kernel handed over whose chunk the driver had not posted (never expected).</summary>
    internal long UnknownChunks { get; private set; }

    /// <summary>The kernel's counters over every socket this queue had.</summary>
    internal XskStatistics ReadStatistics()
    {
        XskStatistics c = _closedStats;
        XskSocket? s = _xsk;
        if (s is null)
        {
            return c;
        }

        XskStatistics n;
        try
        {
            n = s.ReadStatistics();
        }
        catch (ObjectDisposedException)
        {
            return _closedStats;
        }

        return new XskStatistics(c.RxDropped + n.RxDropped, c.RxInvalidDescs + n.RxInvalidDescs, c.TxInvalidDescs + n.TxInvalidDescs,
            c.RxRingFull + n.RxRingFull, c.RxFillRingEmptyDescs + n.RxFillRingEmptyDescs, c.TxRingEmptyDescs + n.TxRingEmptyDescs);
    }

    /// <summary>Opens and binds the socket on the memory's UMEM; an unbound queue hands the kernel every chunk of it at once.</summary>
    protected override void OnStarting(QueueMemory mem)
    {
        var xdpMem = (XdpQueueMemory)mem;
        XskSocket xsk = _nic.InNamespace(() =>
        {
            XskSocket s = XskSocket.Create((nint)xdpMem.Umem, (ulong)xdpMem.UmemLength, XdpQueueMemory.ChunkSize, _nic.Options.FillRingSize, _nic.Options.RxRingSize,
                txRingSize: xdpMem.IsBound ? _nic.Options.TxRingSize : 0);
            try
            {
                // Multi-buffer only where a received frame still fits one chunk: the rx path
                // takes one descriptor per frame.
                bool sg = xdpMem.IsBound && _nic.Options.TxMultiBuffer && _nic.Mtu + 14 <= XdpQueueMemory.ChunkSize - XskSocket.XdpPacketHeadroom;
                s.Bind(_nic.IfIndex, QueueIndex, _nic.Options.CopyOnly, sg);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        });

        // The poll loop puts the socket in the program's map once it has stocked the fill ring:
        // a frame redirected to a socket with an empty fill ring would be dropped.
        _inMap = false;
        _burst = 0;
        _next = 0;
        _xsk = xsk;
        _txPortDue = xsk.Tx is not null;
        if (!xdpMem.IsBound)
        {
            // The driver's own chunks: all of them go to the kernel at once.
            uint n = xsk.Fill.FreeSlots((uint)Math.Min(xdpMem.UmemLength >> XdpQueueMemory.ChunkShift, xsk.Fill.Size));
            for (uint i = 0; i < n; i++)
            {
                xsk.Fill.WriteAddress(i, (ulong)i << XdpQueueMemory.ChunkShift);
            }

            xsk.Fill.Submit(n);
        }
    }

    /// <summary>
    /// Takes the socket out of the map (new frames go to the kernel's stack) and lets the running
    /// loop drain what the kernel already put in the rx ring (at most a second).
    /// </summary>
    protected override void OnStopping()
    {
        ResumePolling();
        XskSocket? xsk = _xsk;
        if (xsk is null)
        {
            return;
        }

        DetachTxPort();

        _nic.Program.ClearSocket(QueueIndex);
        long deadline = Environment.TickCount64 + 1000;
        while (xsk.Rx.Outstanding != 0 && Environment.TickCount64 < deadline)
        {
            Thread.Sleep(1);
        }
    }

    /// <summary>The loop has parked: closes the socket and takes back the chunks the kernel still had.</summary>
    protected override void OnStopped(QueueMemory mem)
    {
        DetachTxPort();
        CloseSocket();
        ReturnTxChunks(mem);
        ((XdpQueueMemory)mem).ReturnPosted();
    }

    /// <summary>
    /// Takes the port away from the tx queue and ends what it has in flight (drained for up to a
    /// second, the rest cancelled); its chunks stay reserved until the socket is closed.
    /// </summary>
    private void DetachTxPort()
    {
        _txPortDue = false;
        XdpTxPort? port = _txPort;
        if (port is null)
        {
            return;
        }

        _txPort = null;
        if (_nic.TxQueue is { } tx)
        {
            tx.Drain(port);
        }
        else
        {
            lock (port.Lock)
            {
                port.Close(null);
            }
        }
    }

    /// <summary>The socket is closed: the kernel reads no header slot any more, so the chunks go back to the pool.</summary>
    private void ReturnTxChunks(QueueMemory mem)
    {
        foreach (NetmemRef c in _txChunks)
        {
            mem.PayloadPool.PutFullNetmem(c, allowDirect: false);
        }

        _txChunks = [];
    }

    /// <summary>
    /// On the poll thread, the pool's consumer: takes the chunks the tx port needs from the
    /// payload pool (before any reaches the fill ring) and publishes the port. With fewer chunks
    /// than asked the port has fewer slots; with none there is no port.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void CreateTxPort(XdpQueueMemory mem, XskSocket xsk)
    {
        _txPortDue = false;
        int slotsPerChunk = xsk.MultiBuffer ? XdpQueueMemory.ChunkSize / XdpTxPort.HeaderSlotSize : 1;
        int want = Math.Max(1, (_nic.Options.TxFrames + slotsPerChunk - 1) / slotsPerChunk);
        var chunks = new NetmemRef[want];
        int n = 0;
        while (n < want)
        {
            NetmemRef c = mem.PayloadPool.AllocNetmem();
            if (c.IsNull)
            {
                break;
            }

            chunks[n++] = c;
        }

        _txChunks = n == want ? chunks : chunks[..n];
        if (n > 0)
        {
            _txPort = new XdpTxPort(xsk, mem.Region!, mem.Umem, _txChunks);
        }
    }

    /// <inheritdoc/>
    protected override bool Poll(QueueMemory mem)
    {
        var xdpMem = (XdpQueueMemory)mem;
        XskSocket xsk = _xsk!;
        if (xdpMem.IsBound)
        {
            if (_txPortDue)
            {
                CreateTxPort(xdpMem, xsk);
            }

            StockFillRing(xdpMem, xsk);
        }

        if (!_inMap)
        {
            PublishSocket(xsk);
        }

        if (_holdRequested && _burst == 0)
        {
            _holding.Set();
            return false;
        }

        XskRing rx = xsk.Rx;

        // A burst cut short by a fault is still in hand: it resumes after the frame that failed.
        if (_burst == 0)
        {
            _burst = rx.Available(Budget);
            _next = 0;
            if (_burst == 0)
            {
                if (xsk.Mode == XskMode.ZeroCopy && xsk.Fill.NeedsWakeup)
                {
                    xsk.Wakeup();
                }

                return false;
            }
        }

        if (xdpMem.IsBound)
        {
            ReceiveBoundBurst(xdpMem, rx);
        }
        else
        {
            ReceiveUnboundBurst(xdpMem, rx, xsk.Fill);
        }

        rx.Release(_burst);
        _burst = 0;
        if (xdpMem.IsBound)
        {
            StockFillRing(xdpMem, xsk);
        }

        return true;
    }

    /// <summary>Bound queue: each frame's payload stays in its <c>net_iov</c>.</summary>
    private void ReceiveBoundBurst(XdpQueueMemory mem, XskRing rx)
    {
        for (; _next < _burst; _next++)
        {
            _frameInHand = true;
            ReceiveBound(mem, rx.RxDescriptor(_next));
            _frameInHand = false;
        }
    }

    /// <summary>
    /// Unbound queue: each frame is copied out and its chunk written back to the fill ring, which
    /// the kernel sees only at the burst's submit, so the chunk stays the driver's to read until then.
    /// </summary>
    private void ReceiveUnboundBurst(XdpQueueMemory mem, XskRing rx, XskRing fill)
    {
        uint slots = fill.FreeSlots(_burst);
        Debug.Assert(slots == _burst, "the fill ring holds every chunk of the driver's UMEM");
        for (; _next < _burst; _next++)
        {
            ref readonly XdpDesc d = ref rx.RxDescriptor(_next);
            fill.WriteAddress(_next, d.Address & ~(ulong)(XdpQueueMemory.ChunkSize - 1));
            _frameInHand = true;
            ReceiveUnbound(mem, d);
            _frameInHand = false;
        }

        fill.Submit(slots);
    }

    /// <summary>Puts the socket in the program's map; a failure is the poll loop's to count, and the next poll tries again.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void PublishSocket(XskSocket xsk)
    {
        _nic.Program.SetSocket(QueueIndex, xsk.Fd);
        _inMap = true;
    }

    /// <summary>Tops the fill ring up from the payload pool, one bulk allocation per burst.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void StockFillRing(XdpQueueMemory mem, XskSocket xsk)
    {
        XskRing fill = xsk.Fill;
        while (true)
        {
            uint want = fill.FreeSlots(Budget);
            if (want == 0)
            {
                return;
            }

            Span<NetmemRef> got = _allocScratch.AsSpan(0, (int)want);
            int n = mem.PayloadPool.AllocBulk(got);
            for (int i = 0; i < n; i++)
            {
                fill.WriteAddress((uint)i, mem.Post(got[i]));
            }

            fill.Submit((uint)n);
            if (n < want)
            {
                return;
            }
        }
    }

    private void ReceiveBound(XdpQueueMemory mem, in XdpDesc desc)
    {
        RxCounters counters = Counters;
        NetmemRef d = mem.TakePosted(desc.Address);
        if (d.IsNull)
        {
            UnknownChunks++;
            counters.Drop(DropReason.NoMemory);
            return;
        }

        _netIovInHand = d;
        var frame = new ReadOnlySpan<byte>(mem.Umem + desc.Address, (int)desc.Length);
        IpDropReason r = IpPacketParser.ParseEthernet(frame, out IpPacketInfo p);
        if (r != IpDropReason.None)
        {
            counters.Drop(DropReasons.From(r));
            RecycleNetIovInHand(mem);
            return;
        }

        DevmemSocket? socket = RxDelivery.Steer(p, _nic.Flows, counters);
        if (socket is null || !RxDelivery.ConsumeHeaders(mem, frame[..p.HeaderLength], counters))
        {
            RecycleNetIovInHand(mem);
            return;
        }

        int offsetInNetIov = (int)(desc.Address & (XdpQueueMemory.ChunkSize - 1)) + p.HeaderLength;
        mem.InHand.Add(mem.PayloadPool, new RxFragment(d, offsetInNetIov, p.PayloadLength));
        _netIovInHand = NetmemRef.Null;
        RxDelivery.Hand(socket, mem, p.PayloadLength, counters);
    }

    private void ReceiveUnbound(XdpQueueMemory mem, in XdpDesc desc)
    {
        var frame = new ReadOnlySpan<byte>(mem.Umem + desc.Address, (int)desc.Length);
        IpDropReason r = IpPacketParser.ParseEthernet(frame, out IpPacketInfo p);
        if (r != IpDropReason.None)
        {
            Counters.Drop(DropReasons.From(r));
            return;
        }

        RxDelivery.Deliver(frame, p, mem, _nic.Dma, _nic.Flows, Counters);
    }

    /// <summary>The frame in hand goes back to the payload pool: it was not delivered.</summary>
    private void RecycleNetIovInHand(QueueMemory mem)
    {
        NetmemRef d = _netIovInHand;
        _netIovInHand = NetmemRef.Null;
        mem.PayloadPool.RecycleDirect(d);
    }

    /// <summary>
    /// The frame whose receive step threw is dropped: its <c>net_iov</c> (bound) goes back to the
    /// pool, its chunk (unbound) is already written back to the fill ring, and the burst goes on
    /// with the next frame.
    /// </summary>
    protected override bool DropFrameInHand(QueueMemory mem)
    {
        if (!_netIovInHand.IsNull)
        {
            RecycleNetIovInHand(mem);
        }

        if (!_frameInHand)
        {
            return false;
        }

        _frameInHand = false;
        _next++;
        return true;
    }

    /// <inheritdoc/>
    protected override void WaitForWork()
    {
        XskSocket? xsk = _xsk;
        if (_holdRequested)
        {
            // Held: wait for the resume, not the socket (bounded, so stop requests are seen).
            _resume.Wait(1);
            return;
        }

        if (!StopRequested && xsk is not null)
        {
            try
            {
                _pollWaits++;
                xsk.WaitReadable(1);
            }
            catch (NativeException)
            {
                // The socket is being closed by Stop: the loop parks next.
            }
        }
    }

    /// <inheritdoc/>
    protected override void Wake()
    {
        // The poll loop waits at most 1 ms in poll(2); nothing to interrupt.
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            _holding.Dispose();
            _resume.Dispose();
        }
    }

    private void CloseSocket()
    {
        XskSocket? s = _xsk;
        if (s is null)
        {
            return;
        }

        _closedStats = ReadStatistics();
        _xsk = null;
        s.Dispose();
    }
}
