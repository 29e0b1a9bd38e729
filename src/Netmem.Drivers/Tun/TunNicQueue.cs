using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Native;

namespace Netmem.Drivers.Tun;

/// <summary>
/// One TunNic rx queue: its poll loop reads packets the kernel sends into the TUN device from
/// this queue's file descriptor, places them into the queue's memory, and delivers them.
/// </summary>
/// <remarks>
/// <para>Each read is one <c>readv</c> into three buffers: 28 bytes of header staging, the next
/// rx descriptor's memory (a page, or a <c>net_iov</c> written through the device's address for
/// it, as DMA would), and a tail for what does not fit. The TUN interface cannot split at a
/// header boundary it does not know, so the split is fixed at 28 bytes, the size of IPv4 + UDP
/// headers without options: for those packets, the common case, the payload lands at offset 0
/// of the descriptor with no copy in user space, headers go to a header page, and only the
/// kernel's own copy happens.</para>
/// <para>Any other packet (IPv6, IPv4 options, TCP, ICMP, neighbour discovery, fragments,
/// truncated or malformed packets) is put back together in a bounce buffer, parsed by
/// <see cref="IpPacketParser"/> and either delivered through <see cref="RxDelivery"/> (one copy)
/// or counted as dropped by reason. The descriptor used for the read goes back to the ring.</para>
/// <para>The type is public only as <see cref="TunNic"/>'s base type argument; everything on it
/// beyond <see cref="NapiPollThread"/> is internal.</para>
/// </remarks>
public sealed unsafe class TunNicQueue : NapiPollThread
{
    /// <summary>IPv4 + UDP headers without options.</summary>
    private const int Staging = 28;

    private const int Budget = 64;
    private const int TailSize = 65536;

    private readonly TunNic _nic;
    private readonly int _fd;
    private readonly byte* _staging;
    private readonly byte* _tail;
    private readonly byte* _bounce;

    /// <summary>The rx descriptor the current read went into, until it is handed, recycled or returned to the ring.</summary>
    private NetmemRef _descriptorInHand;

    /// <summary>True from a successful read until the packet is delivered or counted as dropped.</summary>
    private bool _frameInHand;
    private int _disposed;

    internal TunNicQueue(TunNic nic, int index, int fd, int? pinCpu)
        : base(nic.Device, index, pinCpu)
    {
        _nic = nic;
        _fd = fd;
        _staging = (byte*)NativeMemory.AlignedAlloc(64, 64);
        _tail = (byte*)NativeMemory.AlignedAlloc(TailSize, 64);
        _bounce = (byte*)NativeMemory.AlignedAlloc(TailSize + 8192, 64);
    }

    /// <inheritdoc/>
    protected override bool Poll(QueueMemory mem)
    {
        int done = 0;
        IoVec* iov = stackalloc IoVec[3];
        while (done < Budget)
        {
            NetmemRef d = mem.TakeRxDescriptor();
            _descriptorInHand = d;
            DmabufRegion? region = null;
            byte* host = null;
            int hostLen = 0;
            if (!d.IsNull)
            {
                hostLen = d.Size;
                host = d.IsNetIov
                    ? _nic.Dma.AcquireDeviceAddress(d.DmaAddress, hostLen, out region)
                    : (byte*)d.PageAddress;
            }

            try
            {
                iov[0] = new IoVec { Base = (nint)_staging, Length = Staging };
                iov[1] = new IoVec { Base = (nint)host, Length = (nuint)hostLen };
                iov[2] = new IoVec { Base = (nint)_tail, Length = TailSize };
                nint n = Sys.Readv(_fd, iov, 3);
                if (n < 0)
                {
                    _descriptorInHand = NetmemRef.Null;
                    mem.ReturnRxDescriptor(d);
                    break;
                }

                done++;
                _frameInHand = true;
                Process((int)n, d, host, hostLen, mem);
                _frameInHand = false;
            }
            finally
            {
                region?.Release();
            }
        }

        return done != 0;
    }

    private void Process(int n, NetmemRef d, byte* host, int hostLen, QueueMemory mem)
    {
        RxCounters counters = Counters;
        if (TryFastPath(n, d, hostLen, mem, counters))
        {
            return;
        }

        // Put the packet back together: staging, then the descriptor's bytes, then the tail.
        int a = Math.Min(n, Staging);
        int b = Math.Min(n - a, hostLen);
        int c = n - a - b;
        Buffer.MemoryCopy(_staging, _bounce, a, a);
        if (b > 0)
        {
            Buffer.MemoryCopy(host, _bounce + a, b, b);
        }

        if (c > 0)
        {
            Buffer.MemoryCopy(_tail, _bounce + a + b, c, c);
        }

        _descriptorInHand = NetmemRef.Null;
        mem.ReturnRxDescriptor(d);
        var packet = new ReadOnlySpan<byte>(_bounce, n);
        IpDropReason r = IpPacketParser.Parse(packet, out IpPacketInfo p);
        if (r != IpDropReason.None)
        {
            counters.Drop(DropReasons.From(r));
            return;
        }

        RxDelivery.Deliver(packet, p, mem, _nic.Dma, _nic.Flows, counters);
    }

    /// <summary>
    /// IPv4 without options carrying UDP with a payload that fits the descriptor: the payload is
    /// already where a header-splitting NIC would put it. Validated field by field, as the
    /// parser would, before anything is delivered.
    /// </summary>
    private bool TryFastPath(int n, NetmemRef d, int hostLen, QueueMemory mem, RxCounters counters)
    {
        byte* s = _staging;
        if (d.IsNull || !mem.HeaderDataSplit || n <= Staging || n - Staging > hostLen || s[0] != 0x45 || s[9] != IpPacketParser.ProtocolUdp)
        {
            return false;
        }

        var hdr = new ReadOnlySpan<byte>(s, Staging);
        if (BinaryPrimitives.ReadUInt16BigEndian(hdr[2..]) != n
            || (BinaryPrimitives.ReadUInt16BigEndian(hdr[6..]) & 0x3FFF) != 0
            || BinaryPrimitives.ReadUInt16BigEndian(hdr[24..]) != n - 20)
        {
            return false;
        }

        int payload = n - Staging;
        var key = new FlowKey(
            IpProtocol.Udp,
            BinaryPrimitives.ReadUInt16BigEndian(hdr[22..]),
            IpPacketInfo.MapIPv4(BinaryPrimitives.ReadUInt32BigEndian(hdr[12..])),
            IpPacketInfo.MapIPv4(BinaryPrimitives.ReadUInt32BigEndian(hdr[16..])),
            BinaryPrimitives.ReadUInt16BigEndian(hdr[20..]));
        DevmemSocket? socket = _nic.Flows.Lookup(key);
        if (socket is null)
        {
            _descriptorInHand = NetmemRef.Null;
            mem.PayloadPool.RecycleDirect(d);
            counters.Drop(DropReason.NoSocket);
            return true;
        }

        if (!RxDelivery.ConsumeHeaders(mem, hdr, counters))
        {
            _descriptorInHand = NetmemRef.Null;
            mem.PayloadPool.RecycleDirect(d);
            return true;
        }

        mem.InHand.Add(mem.PayloadPool, new RxFragment(d, 0, payload));
        _descriptorInHand = NetmemRef.Null;
        RxDelivery.Hand(socket, mem, payload, counters);
        return true;
    }

    /// <summary>The descriptor the failed read used goes back to the pool; the packet read, if any, is the dropped frame.</summary>
    protected override bool DropFrameInHand(QueueMemory mem)
    {
        if (!_descriptorInHand.IsNull)
        {
            NetmemRef d = _descriptorInHand;
            _descriptorInHand = NetmemRef.Null;
            mem.PayloadPool.RecycleDirect(d);
        }

        bool dropped = _frameInHand;
        _frameInHand = false;
        return dropped;
    }

    /// <inheritdoc/>
    protected override void WaitForWork()
    {
        if (!StopRequested)
        {
            Sys.WaitReadable(_fd, 1);
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
        if (disposing && Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            NativeMemory.AlignedFree(_staging);
            NativeMemory.AlignedFree(_tail);
            NativeMemory.AlignedFree(_bounce);
        }
    }
}
