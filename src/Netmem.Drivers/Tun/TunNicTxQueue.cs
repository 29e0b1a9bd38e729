using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Drivers.Tun;

/// <summary>
/// TunNic's devmem transmit: each packet becomes one IP datagram handed to the kernel with ONE
/// gather write (<c>writev</c>) to the TUN descriptor, which the kernel receives as if the
/// interface had (its IP stack delivers it to the namespace's sockets). The first buffer holds
/// the IPv4 or IPv6 and UDP headers; the others are the payload fragments, read by the kernel
/// straight from the region at the device's address for each fragment's DMA address. The TUN
/// device plays the NIC's DMA engine: nothing in user space copies the payload, and a
/// device-only region works like a readable one.
/// </summary>
/// <remarks>
/// <para>Checksums: the IPv4 header checksum is filled in and the UDP checksum left 0 (none,
/// allowed for IPv4). IPv6 requires a UDP checksum (RFC 8200; Linux drops a zero one), so for
/// IPv6 the device computes it over the fragments where they lie, as a NIC's checksum offload
/// does while it reads them; that reads the payload once, and still copies nothing.</para>
/// <para>Outcomes: a write that takes the whole packet completes it. A failed write (EIO on a
/// link that is down, EINVAL, ...) or a short one drops it (the queue cancels it) and is counted
/// in <see cref="TunTxCounters"/>. EAGAIN, possible only when the descriptor's send buffer is
/// full (the kernel's default is unlimited, so only after TUNSETSNDBUF lowered it), is retried
/// after waiting up to 1 ms for the descriptor to become writable, at most
/// <see cref="MaxWriteAttempts"/> attempts in all; then the packet is dropped and counted. The
/// bound keeps one stuck descriptor from stalling the queue behind it.</para>
/// <para>Everything runs on the queue's thread (<see cref="DevmemTxQueue"/>); the counters are
/// written there only and read anywhere. Nothing is allocated per packet.</para>
/// </remarks>
internal sealed unsafe class TunNicTxQueue : DevmemTxQueue
{
    /// <summary>Write attempts per packet while the descriptor reports EAGAIN.</summary>
    internal const int MaxWriteAttempts = 3;

    /// <summary>IPv6 + UDP headers, the larger of the two families.</summary>
    private const int MaxHeaders = 48;

    /// <summary><c>POLLOUT</c> of poll(2).</summary>
    private const short PollOut = 4;

    private readonly DmaDevice _dma;
    private readonly int _fd;
    private readonly int _mtu;

    /// <summary>The region references taken for the packet in hand, released after its write.</summary>
    private readonly DmabufRegion?[] _held = new DmabufRegion?[DevmemTxPacket.MaxFrags];

    private long _writes;
    private long _writeErrors;
    private long _shortWrites;
    private long _wouldBlockRetries;
    private long _wouldBlockDrops;
    private int _lastErrno;

    /// <param name="device">The TUN driver's device.</param>
    /// <param name="dma">The device's IOVA space, where TX bindings are mapped.</param>
    /// <param name="fd">The TUN descriptor to write to (queue 0's); it must outlive the queue.</param>
    /// <param name="mtu">The link MTU: the largest IP packet sent.</param>
    /// <param name="capacity">Packets the ring holds; a send past it gets ENOBUFS.</param>
    internal TunNicTxQueue(NetDevice device, DmaDevice dma, int fd, int mtu, int capacity)
        : base(device, 0, capacity)
    {
        _dma = dma;
        _fd = fd;
        _mtu = mtu;
    }

    /// <summary>A snapshot of the write counters.</summary>
    internal TunTxCounters Counters => new(
        Interlocked.Read(ref _writes),
        Interlocked.Read(ref _writeErrors),
        Interlocked.Read(ref _shortWrites),
        Interlocked.Read(ref _wouldBlockRetries),
        Interlocked.Read(ref _wouldBlockDrops),
        Volatile.Read(ref _lastErrno));

    /// <inheritdoc/>
    protected override int MaxPayload(bool ipv6) => _mtu - (ipv6 ? 40 : 20) - 8;

    /// <inheritdoc/>
    protected internal override TxOutcome Xmit(in DevmemTxPacket packet)
    {
        DevmemTxRoute route = packet.Route;
        byte* headers = stackalloc byte[MaxHeaders];
        int headerLength = FrameBuilder.WriteUdpHeaders(new Span<byte>(headers, MaxHeaders), ethernet: false, route.IsIPv6,
            route.SourceAddress, route.DestinationAddress, route.SourcePort, route.DestinationPort, packet.PayloadLength);
        IoVec* iov = stackalloc IoVec[1 + DevmemTxPacket.MaxFrags];
        iov[0] = new IoVec { Base = (nint)headers, Length = (nuint)headerLength };
        int frags = packet.FragCount;
        int held = 0;
        try
        {
            for (int i = 0; i < frags; i++)
            {
                DevmemTxFrag f = packet.GetFrag(i);
                byte* at = _dma.AcquireDeviceAddress(f.DmaAddress, f.Length, out DmabufRegion region, read: true);
                _held[held++] = region;
                iov[1 + i] = new IoVec { Base = (nint)at, Length = (nuint)f.Length };
            }

            if (route.IsIPv6)
            {
                WriteUdp6Checksum(headers, iov + 1, frags);
            }

            return Write(iov, 1 + frags, headerLength + packet.PayloadLength);
        }
        finally
        {
            for (int i = 0; i < held; i++)
            {
                _held[i]!.Release();
                _held[i] = null;
            }
        }
    }

    /// <summary>The IPv6 UDP checksum over the headers and the payload fragments where they lie (<see cref="Udp6Checksum"/>).</summary>
    private static void WriteUdp6Checksum(byte* headers, IoVec* payload, int frags)
    {
        var ipv6Udp = new Span<byte>(headers, Udp6Checksum.HeadersLength);
        InternetChecksum sum = Udp6Checksum.Begin(ipv6Udp);
        for (int i = 0; i < frags; i++)
        {
            sum.Add(new ReadOnlySpan<byte>((void*)payload[i].Base, (int)payload[i].Length));
        }

        Udp6Checksum.Store(ipv6Udp, in sum);
    }

    /// <summary>One gather write of the whole packet, retried on EAGAIN as the type's remarks say.</summary>
    private TxOutcome Write(IoVec* iov, int count, int length)
    {
        for (int attempt = 1; ; attempt++)
        {
            nint n = Sys.Writev(_fd, iov, count);
            if (n == length)
            {
                Interlocked.Increment(ref _writes);
                return TxOutcome.Sent;
            }

            if (n >= 0)
            {
                Interlocked.Increment(ref _shortWrites);
                return TxOutcome.Dropped;
            }

            int errno = (int)-n;
            Volatile.Write(ref _lastErrno, errno);
            if (errno != Errno.EAGAIN)
            {
                Interlocked.Increment(ref _writeErrors);
                return TxOutcome.Dropped;
            }

            if (attempt == MaxWriteAttempts)
            {
                Interlocked.Increment(ref _wouldBlockDrops);
                return TxOutcome.Dropped;
            }

            Interlocked.Increment(ref _wouldBlockRetries);
            WaitWritable();
        }
    }

    private void WaitWritable()
    {
        PollFd p = new() { Fd = _fd, Events = PollOut };
        Sys.Poll(new Span<PollFd>(&p, 1), 1);
    }
}
