using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Drivers.Xdp;

/// <summary>
/// XdpNic's devmem transmit: AF_XDP tx from the UMEM the payload already lives in. A packet goes
/// out through the socket of a running queue whose UMEM is the region of the packet's TX binding
/// (the region bound for rx on that queue): its Ethernet/IPv4-or-IPv6/UDP headers are written into a
/// header slot the queue reserved in the UMEM, and its payload fragments are posted as tx
/// descriptors at their region offsets, which are their UMEM addresses (multi-buffer,
/// <c>XDP_USE_SG</c>: every descriptor but the last carries <c>XDP_PKT_CONTD</c>). The kernel
/// reads the payload where it lies. Where the kernel refused <c>XDP_USE_SG</c> the queue copies
/// headers and payload into one reserved frame instead and the packet completes as copied.
/// IPv6 requires a UDP checksum: the queue computes it over the payload where it lies
/// (<see cref="Udp6Checksum"/>), as a NIC's checksum offload reads it; that reads the payload
/// once and copies nothing. IPv4 goes out with UDP checksum 0 (none).
/// </summary>
/// <remarks>
/// <para>A packet is <see cref="TxOutcome.Pending"/> once posted; it ends when all its
/// descriptors are back on the completion ring, which <see cref="AfterBatch"/> reads after each
/// batch and every ~50 ms when idle (<see cref="XdpTxPort"/>). The ring is kicked with a
/// non-blocking <c>sendto</c> while it needs a wakeup and holds descriptors the kernel has not
/// taken (copy mode sends only then, at most a budget per call).</para>
/// <para>Refusals, each a cancelled packet and a counter of <see cref="XdpTxCounters"/>, as the
/// kernel's <c>validate_xmit_unreadable_skb</c> frees an skb whose <c>net_iov</c>s belong to a
/// binding the device cannot send from: a TX binding whose region is not the UMEM of a running
/// bound queue (the region is not bound for rx here, or its queue is restarting); a frame larger than a chunk without
/// multi-buffer; no free slot or tx-ring room after kicking and reaping
/// (<see cref="RoomAttempts"/> times).</para>
/// <para>When a queue stops (restart, unbind, teardown) its port is drained: kicked and reaped
/// for up to a second, then what is still in flight is cancelled. A descriptor the kernel found
/// invalid never comes back, so its packet, and the ones behind it, end only then.</para>
/// </remarks>
internal sealed unsafe class XdpNicTxQueue : DevmemTxQueue
{
    /// <summary>Kick-and-reap rounds a post waits for a free slot before the packet is dropped.</summary>
    internal const int RoomAttempts = 64;

    /// <summary>Kicks per port and batch while the kernel says EAGAIN (its per-call budget).</summary>
    private const int KicksPerBatch = 64;

    private readonly XdpNic _nic;
    private readonly byte[] _dstMac;
    private readonly byte[] _srcMac;

    private long _notUmemDrops;
    private long _oversizeDrops;
    private long _noRoomDrops;
    private long _strayCompletions;
    private long _kicks;
    private long _kickErrors;
    private long _drainCancels;
    private long _copiedBytes;
    private int _lastKickErrno;

    internal XdpNicTxQueue(XdpNic nic, int capacity, byte[] srcMac, byte[] dstMac)
        : base(nic.Device, 0, capacity)
    {
        _nic = nic;
        _srcMac = srcMac;
        _dstMac = dstMac;
    }

    /// <summary>A snapshot of the transmit counters.</summary>
    internal XdpTxCounters Counters => new(
        Interlocked.Read(ref _notUmemDrops),
        Interlocked.Read(ref _oversizeDrops),
        Interlocked.Read(ref _noRoomDrops),
        Interlocked.Read(ref _strayCompletions),
        Interlocked.Read(ref _kicks),
        Interlocked.Read(ref _kickErrors),
        Interlocked.Read(ref _drainCancels),
        Interlocked.Read(ref _copiedBytes),
        Volatile.Read(ref _lastKickErrno));

    /// <inheritdoc/>
    protected override int MaxPayload(bool ipv6) => _nic.Mtu - (ipv6 ? 40 : 20) - 8;

    /// <inheritdoc/>
    protected internal override TxOutcome Xmit(in DevmemTxPacket packet)
    {
        XdpTxPort? port = _nic.FindTxPort(packet.Binding.Region);
        if (port is null)
        {
            Interlocked.Increment(ref _notUmemDrops);
            return TxOutcome.Dropped;
        }

        DevmemTxRoute route = packet.Route;
        bool ipv6 = route.IsIPv6;
        int headerLength = FrameBuilder.UdpHeaderLength(ethernet: true, ipv6);
        lock (port.Lock)
        {
            if (port.Closed)
            {
                Interlocked.Increment(ref _notUmemDrops);
                return TxOutcome.Dropped;
            }

            bool gather = port.MultiBuffer;
            if (!gather && headerLength + packet.PayloadLength > port.SlotSize)
            {
                Interlocked.Increment(ref _oversizeDrops);
                return TxOutcome.Dropped;
            }

            int descs = gather ? 1 + packet.FragCount : 1;
            if (!MakeRoom(port, descs))
            {
                Interlocked.Increment(ref _noRoomDrops);
                return TxOutcome.Dropped;
            }

            int slot = port.TakeSlot();
            ulong address = port.SlotAddress(slot);
            var frame = new Span<byte>(port.Umem + address, port.SlotSize);
            FrameBuilder.WriteUdpHeaders(frame, ethernet: true, ipv6, route.SourceAddress, route.DestinationAddress,
                route.SourcePort, route.DestinationPort, packet.PayloadLength);
            _dstMac.CopyTo(frame);
            _srcMac.CopyTo(frame[6..]);
            XskRing tx = port.Tx;
            if (gather)
            {
                if (ipv6)
                {
                    WriteUdp6Checksum(port, frame, in packet);
                }

                tx.WriteDescriptor(0, address, (uint)headerLength, XdpDesc.PacketContinues);
                int last = packet.FragCount - 1;
                for (int i = 0; i <= last; i++)
                {
                    DevmemTxFrag f = packet.GetFrag(i);
                    tx.WriteDescriptor((uint)(1 + i), f.RegionOffset, (uint)f.Length, i == last ? 0 : XdpDesc.PacketContinues);
                }
            }
            else
            {
                // The device reads the payload into the frame, as SimNic's does.
                DmaDevice dma = _nic.Dma;
                int off = headerLength;
                for (int i = 0; i < packet.FragCount; i++)
                {
                    DevmemTxFrag f = packet.GetFrag(i);
                    dma.DmaRead(f.DmaAddress, frame.Slice(off, f.Length));
                    off += f.Length;
                }

                if (ipv6)
                {
                    Span<byte> ipv6Udp = frame.Slice(14, Udp6Checksum.HeadersLength);
                    InternetChecksum sum = Udp6Checksum.Begin(ipv6Udp);
                    sum.Add(frame[headerLength..off]);
                    Udp6Checksum.Store(ipv6Udp, in sum);
                }

                Interlocked.Add(ref _copiedBytes, packet.PayloadLength);
                tx.WriteDescriptor(0, address, (uint)off, 0);
            }

            port.Push(in packet, descs, slot, copied: !gather);
            tx.Submit((uint)descs);
        }

        return TxOutcome.Pending;
    }

    /// <summary>The IPv6 UDP checksum of a gathered packet: over the headers in <paramref name="frame"/> and the payload fragments where they lie in the UMEM.</summary>
    private static void WriteUdp6Checksum(XdpTxPort port, Span<byte> frame, in DevmemTxPacket packet)
    {
        Span<byte> ipv6Udp = frame.Slice(14, Udp6Checksum.HeadersLength);
        InternetChecksum sum = Udp6Checksum.Begin(ipv6Udp);
        for (int i = 0; i < packet.FragCount; i++)
        {
            DevmemTxFrag f = packet.GetFrag(i);
            sum.Add(new ReadOnlySpan<byte>(port.Umem + f.RegionOffset, f.Length));
        }

        Udp6Checksum.Store(ipv6Udp, in sum);
    }

    /// <summary>Kicks every port's tx ring that holds descriptors and reaps its completions.</summary>
    protected override void AfterBatch()
    {
        for (int q = 0; q < _nic.QueueCount; q++)
        {
            XdpTxPort? port = _nic.TxPortOf(q);
            if (port is null)
            {
                continue;
            }

            lock (port.Lock)
            {
                if (!port.Closed)
                {
                    KickAndReap(port);
                }
            }
        }
    }

    /// <summary>The queue stopped: every port still running is drained and its packets in flight ended.</summary>
    protected override void OnStopped()
    {
        for (int q = 0; q < _nic.QueueCount; q++)
        {
            if (_nic.TxPortOf(q) is { } port)
            {
                Drain(port);
            }
        }
    }

    /// <summary>
    /// Ends what <paramref name="port"/> has in flight: kicks and reaps for up to a second, then
    /// cancels the rest; the port takes no more packets.
    /// </summary>
    internal void Drain(XdpTxPort port)
    {
        lock (port.Lock)
        {
            if (port.Closed)
            {
                return;
            }

            long deadline = Environment.TickCount64 + 1000;
            while (port.InFlight > 0 && Environment.TickCount64 < deadline)
            {
                KickAndReap(port);
                if (port.InFlight > 0)
                {
                    Thread.Sleep(1);
                }
            }

            Interlocked.Add(ref _drainCancels, port.Close(this));
        }
    }

    /// <summary>Called by <see cref="XdpTxPort"/> for each packet it ends.</summary>
    internal void EndFromPort(in DevmemTxPacket packet, TxOutcome outcome) => EndPending(in packet, outcome);

    /// <summary>A completion-ring entry that was not the one the FIFO expected.</summary>
    internal void CountStrayCompletion() => Interlocked.Increment(ref _strayCompletions);

    /// <summary>Makes room for <paramref name="descs"/> descriptors and a slot: reap, then kick and reap, a bounded number of times.</summary>
    private bool MakeRoom(XdpTxPort port, int descs)
    {
        for (int attempt = 0; attempt < RoomAttempts; attempt++)
        {
            if (port.HasRoom(descs))
            {
                return true;
            }

            if (port.Reap(this) == 0)
            {
                Kick(port);
                port.Reap(this);
                if (attempt > 0 && !port.HasRoom(descs))
                {
                    Thread.Yield();
                }
            }
        }

        return port.HasRoom(descs);
    }

    /// <summary>Kicks while the kernel has descriptors to take (bounded), then reaps.</summary>
    private void KickAndReap(XdpTxPort port)
    {
        for (int i = 0; i < KicksPerBatch && port.Tx.Outstanding != 0; i++)
        {
            if (!Kick(port))
            {
                break;
            }

            port.Reap(this);
        }

        port.Reap(this);
    }

    /// <summary>
    /// One <c>sendto</c> when the ring asks for a wakeup. True when another may help (it sent, or
    /// stopped at its budget or a full completion ring); false on any other error, which is counted.
    /// </summary>
    private bool Kick(XdpTxPort port)
    {
        if (!port.Tx.NeedsWakeup)
        {
            return false;
        }

        Interlocked.Increment(ref _kicks);
        int errno = port.Socket.KickTx();
        if (errno is 0 or Errno.EAGAIN or Errno.EBUSY)
        {
            return true;
        }

        Interlocked.Increment(ref _kickErrors);
        Volatile.Write(ref _lastKickErrno, errno);
        return false;
    }
}
