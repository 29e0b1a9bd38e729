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
/// <para>The socket lives while the queue runs: <see cref="Start(XdpQueueMemory)"/> creates it on
/// the memory's UMEM, binds it and puts it in the program's map; <see cref="StopQueue"/> parks the
/// loop, closes it (the kernel unbinds it and stops writing into the UMEM before close returns)
/// and takes back every chunk that was still the kernel's. A queue restart therefore swaps the
/// UMEM with the memory, as a NIC swaps its descriptor rings. While no socket is in the map the
/// program passes the queue's frames to the kernel's stack.</para>
/// <para>Bound queue: the fill ring is stocked from the payload pool (<c>AllocBulk</c>, provider
/// <c>net_iov</c>s), each entry the <c>net_iov</c>'s region offset. A received frame's headers are
/// parsed where the kernel wrote them and copied to a header-pool buffer; its payload stays in the
/// chunk and goes to the socket as a fragment at (chunk offset + headroom + header length). A
/// frame not delivered returns its <c>net_iov</c> to the pool at once.</para>
/// <para>Unbound queue: the UMEM is the driver's; each frame is delivered by copy through
/// <see cref="RxDelivery"/> (readable pages, linear data for the socket) and its chunk goes
/// straight back to the fill ring.</para>
/// </remarks>
internal sealed unsafe class XdpNicQueue : NapiPollThread
{
    private const int Budget = 64;

    private readonly XdpNic _nic;
    private readonly NetmemRef[] _allocScratch = new NetmemRef[Budget];
    private XdpQueueMemory? _mem;
    private XskSocket? _xsk;

    /// <summary>Kernel counters of sockets this queue closed (a restart starts a new socket at zero).</summary>
    private XskStatistics _closedStats;

    public XdpNicQueue(XdpNic nic, int index, int? pinCpu)
        : base(nic.Device, index, pinCpu)
    {
        _nic = nic;
    }

    /// <summary>The mode of the socket now bound, or null while stopped.</summary>
    public XskMode? Mode => _xsk?.Mode;

    /// <summary>The queue's memory now, or null while stopped.</summary>
    public XdpQueueMemory? XdpMemory => _mem;

    /// <summary>Frames the kernel handed over whose chunk the driver had not posted (never expected).</summary>
    public long UnknownChunks { get; private set; }

    /// <summary>The kernel's counters over every socket this queue had.</summary>
    public XskStatistics ReadStatistics()
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

    /// <summary>Opens, binds and maps the socket on <paramref name="mem"/>'s UMEM, then runs the loop on it.</summary>
    public void Start(XdpQueueMemory mem)
    {
        XskSocket xsk = _nic.InNamespace(() =>
        {
            XskSocket s = XskSocket.Create((nint)mem.Umem, (ulong)mem.UmemLength, XdpQueueMemory.ChunkSize, _nic.Options.FillRingSize, _nic.Options.RxRingSize);
            try
            {
                s.Bind(_nic.IfIndex, QueueIndex, _nic.Options.CopyOnly);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        });
        try
        {
            _nic.Program.SetSocket(QueueIndex, xsk.Fd);
        }
        catch
        {
            xsk.Dispose();
            throw;
        }

        _xsk = xsk;
        _mem = mem;
        if (!mem.IsBound)
        {
            // The driver's own chunks: all of them go to the kernel at once.
            uint n = xsk.Fill.FreeSlots((uint)Math.Min(mem.UmemLength >> XdpQueueMemory.ChunkShift, xsk.Fill.Size));
            for (uint i = 0; i < n; i++)
            {
                xsk.Fill.WriteAddress(i, (ulong)i << XdpQueueMemory.ChunkShift);
            }

            xsk.Fill.Submit(n);
        }

        Start(mem.Pools);
    }

    /// <summary>Parks the loop, closes the socket and takes back the chunks the kernel still had.</summary>
    public XdpQueueMemory StopQueue()
    {
        _ = Stop();
        XdpQueueMemory mem = _mem!;
        CloseSocket();
        mem.ReturnPosted();
        _mem = null;
        return mem;
    }

    /// <summary>Device teardown: stop if running, free the memory, end the thread.</summary>
    public void ShutdownQueue()
    {
        if (_mem is not null)
        {
            StopQueue().Free();
        }

        Dispose();
    }

    protected override bool Poll(QueueMemory pools)
    {
        XdpQueueMemory mem = _mem!;
        XskSocket xsk = _xsk!;
        if (mem.IsBound)
        {
            StockFillRing(mem, xsk);
        }

        XskRing rx = xsk.Rx;
        uint n = rx.Available(Budget);
        if (n == 0)
        {
            if (xsk.Mode == XskMode.ZeroCopy && xsk.Fill.NeedsWakeup)
            {
                xsk.Wakeup();
            }

            return false;
        }

        if (mem.IsBound)
        {
            for (uint i = 0; i < n; i++)
            {
                ReceiveBoundGuarded(mem, rx.RxDescriptor(i));
            }
        }
        else
        {
            XskRing fill = xsk.Fill;
            uint slots = fill.FreeSlots(n);
            Debug.Assert(slots == n, "the fill ring holds every chunk of the driver's UMEM");
            for (uint i = 0; i < n; i++)
            {
                ref readonly XdpDesc d = ref rx.RxDescriptor(i);
                ReceiveUnboundGuarded(mem, d);
                fill.WriteAddress(i, d.Address & ~(ulong)(XdpQueueMemory.ChunkSize - 1));
            }

            fill.Submit(slots);
        }

        rx.Release(n);
        if (mem.IsBound)
        {
            StockFillRing(mem, xsk);
        }

        return true;
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
            int n = mem.Pools.PayloadPool.AllocBulk(got);
            NetmemRef[] posted = mem.Posted;
            for (int i = 0; i < n; i++)
            {
                NetmemRef d = got[i];
                ulong offset = d.RegionOffset;
                posted[offset >> XdpQueueMemory.ChunkShift] = d;
                fill.WriteAddress((uint)i, offset);
            }

            fill.Submit((uint)n);
            mem.PostedCount += n;
            if (n < want)
            {
                return;
            }
        }
    }

    /// <summary>Frames whose delivery threw: counted (as NoMemory drops too), the queue keeps running.</summary>
    public long PollErrors => Volatile.Read(ref _pollErrors);

    /// <summary>The message of the last exception a frame's delivery threw, or null.</summary>
    public string? LastPollError { get; private set; }

    private long _pollErrors;

    private void ReceiveBoundGuarded(XdpQueueMemory mem, in XdpDesc desc)
    {
        try
        {
            ReceiveBound(mem, desc);
        }
#pragma warning disable CA1031 // No exception may escape the poll loop: count, keep running.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Failed(e);
        }
    }

    private void ReceiveUnboundGuarded(XdpQueueMemory mem, in XdpDesc desc)
    {
        try
        {
            ReceiveUnbound(mem, desc);
        }
#pragma warning disable CA1031 // No exception may escape the poll loop: count, keep running.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Failed(e);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Failed(Exception e)
    {
        Interlocked.Increment(ref _pollErrors);
        LastPollError = e.Message;
        Counters.Drop(DropReason.NoMemory);
    }

    private void ReceiveBound(XdpQueueMemory mem, in XdpDesc desc)
    {
        RxCounters counters = Counters;
        ulong chunk = desc.Address >> XdpQueueMemory.ChunkShift;
        NetmemRef d = chunk < (ulong)mem.Posted.Length ? mem.Posted[chunk] : NetmemRef.Null;
        if (d.IsNull)
        {
            UnknownChunks++;
            counters.Drop(DropReason.NoMemory);
            return;
        }

        mem.Posted[chunk] = NetmemRef.Null;
        mem.PostedCount--;
        PagePool pool = mem.Pools.PayloadPool;
        var frame = new ReadOnlySpan<byte>(mem.Umem + desc.Address, (int)desc.Length);
        IpDropReason r = IpPacketParser.ParseEthernet(frame, out IpPacketInfo p);
        if (r != IpDropReason.None)
        {
            pool.RecycleDirect(d);
            counters.Drop(DropReasons.From(r));
            return;
        }

        if (p.PayloadLength == 0)
        {
            pool.RecycleDirect(d);
            counters.Drop(DropReason.ZeroPayload);
            return;
        }

        var key = new FlowKey(p.L4 == L4Kind.Tcp ? IpProtocol.Tcp : IpProtocol.Udp, p.DestinationPort, p.SourceAddress, p.DestinationAddress, p.SourcePort);
        DevmemSocket? socket = _nic.Flows.Lookup(key);
        if (socket is null)
        {
            pool.RecycleDirect(d);
            counters.Drop(DropReason.NoSocket);
            return;
        }

        if (!RxDelivery.ConsumeHeaders(mem.Pools, frame[..p.HeaderLength], counters))
        {
            pool.RecycleDirect(d);
            return;
        }

        int offsetInNetIov = (int)(desc.Address & (XdpQueueMemory.ChunkSize - 1)) + p.HeaderLength;
        mem.Pools.InHand.Add(pool, new RxFragment(d, offsetInNetIov, p.PayloadLength));
        RxDelivery.Hand(socket, mem.Pools, p.PayloadLength, counters);
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

        RxDelivery.Deliver(frame, p, mem.Pools, _nic.Dma, _nic.Flows, Counters);
    }

    protected override void WaitForWork()
    {
        XskSocket? xsk = _xsk;
        if (!StopRequested && xsk is not null)
        {
            try
            {
                xsk.WaitReadable(1);
            }
            catch (NativeException)
            {
                // The socket is being closed by Stop: the loop parks next.
            }
        }
    }

    protected override void Wake()
    {
        // The poll loop waits at most 1 ms in poll(2); nothing to interrupt.
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
