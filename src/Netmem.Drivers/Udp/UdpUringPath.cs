using System.Runtime.InteropServices;
using Netmem.Native;

namespace Netmem.Drivers.Udp;

/// <summary>
/// The io_uring path: one multishot <c>IORING_OP_RECVMSG</c> with <c>IOSQE_BUFFER_SELECT</c> over a
/// provided-buffer ring whose buffers are pool netmems.
/// </summary>
/// <remarks>
/// <para><b>Where the pool meets the ring.</b> Buffer ids index <see cref="_bidNetmem"/>, which
/// names the netmem posted under each id, so a completion's id maps back to its netmem without
/// allocation. An id is in one of two states: posted (its netmem is on the ring or being written
/// by the kernel, and nobody else may touch it) or free (its netmem left with a record). The
/// kernel hands a buffer back only through a CQE carrying its id; that CQE moves the id to the
/// free list and the netmem into the record. <see cref="Refill"/> gives each free id a fresh
/// netmem from the pool (the alloc cache first, in bulk) and publishes them with one release
/// store of the ring tail. A record's netmem thus goes back to the pool when it is returned, and
/// from there onto the ring under whatever id is free next: the pool is what feeds the ring, and
/// no netmem is ever both on the ring and in a record.</para>
/// <para><b>Exhaustion.</b> When every posted buffer is used the kernel ends the multishot request
/// with ENOBUFS; the datagrams it could not place stay queued on the socket. The next poll counts
/// it, refills, and arms the request again, so nothing the kernel delivered is lost.</para>
/// <para><b>Wake-ups.</b> An 8-byte read of the receiver's eventfd stays queued on the ring;
/// <see cref="Wake"/> signals the eventfd, the read completes, and a thread blocked in
/// <c>io_uring_enter</c> returns.</para>
/// <para><b>Closing.</b> The multishot request and the read are cancelled and their last CQEs
/// awaited before any posted netmem goes back to the pool: until then the kernel may still write
/// into them.</para>
/// </remarks>
internal sealed unsafe class UdpUringPath : UdpPathBase
{
    private const ulong TagRecv = 1;
    private const ulong TagWake = 2;
    private const ulong TagCancel = 3;
    private const int ENOSYS = 38;
    private const int ECANCELED = 125;

    /// <summary>Bytes ahead of the payload in each buffer: io_uring_recvmsg_out, the name area, the control area.</summary>
    private const int Headroom = 16 + UdpSocketNative.SockAddrSize + UdpSocketNative.ControlSpace;

    private readonly UdpReceiver _r;
    private readonly IoUring _ring;
    private readonly IoUringBufRing _bufs;
    private readonly int _entries;
    private readonly int _bufLen;
    private readonly int _eventFd;

    /// <summary>The netmem posted under each buffer id, 0 while the id is free.</summary>
    private readonly nuint[] _bidNetmem;

    /// <summary>Free buffer ids.</summary>
    private readonly ushort[] _freeBids;

    /// <summary>Scratch for bulk allocation.</summary>
    private readonly NetmemRef[] _alloc;

    private readonly MsgHdr* _msg;
    private readonly ulong* _wakeBuf;
    private int _freeBidCount;
    private bool _recvArmed;
    private bool _wakeArmed;
    private int _disposed;

    public UdpUringPath(UdpReceiver receiver, int entries, int eventFd, int simulatedErrno)
    {
        _r = receiver;
        _entries = entries;
        _eventFd = eventFd;
        _bufLen = receiver.Pool.NetmemSize;
        _ring = IoUring.Create(8, (uint)Math.Max(64, entries * 2), simulatedErrno);
        try
        {
            _bufs = new IoUringBufRing(entries);
            _ring.RegisterBufRing(_bufs.Address, (uint)entries, 0);
        }
        catch
        {
            _bufs?.Dispose();
            _ring.Dispose();
            throw;
        }

        _bidNetmem = new nuint[entries];
        _freeBids = new ushort[entries];
        _alloc = new NetmemRef[entries];
        for (int i = 0; i < entries; i++)
        {
            _freeBids[i] = (ushort)(entries - 1 - i);
        }

        _freeBidCount = entries;
        _msg = (MsgHdr*)NativeMemory.AllocZeroed((nuint)sizeof(MsgHdr));
        _msg->NameLen = UdpSocketNative.SockAddrSize;
        _msg->ControlLen = UdpSocketNative.ControlSpace;
        _wakeBuf = (ulong*)NativeMemory.AllocZeroed(sizeof(ulong));
    }

    public override UdpReceivePath Kind => UdpReceivePath.IoUring;

    public override int BufferCapacity => _bufLen - Headroom;

    public override bool HasPostedBuffers => _freeBidCount < _entries;

    /// <summary>CQEs the kernel kept on its overflow list (a full CQ ring); sized so this stays 0.</summary>
    public uint CqOverflow => _ring.CqOverflow;

    public override int Poll(Span<UdpDatagram> dest, int limit)
    {
        int n = Harvest(dest, limit);
        Maintain();
        if (n < dest.Length && n < limit)
        {
            if (_ring.CqReady == 0)
            {
                // Run completions the kernel queued as task work for this thread.
                _ring.SubmitAndWait(0, getEvents: true);
            }

            n += Harvest(dest[n..], limit - n);
            Maintain();
        }

        return n;
    }

    public override void Wait(int timeoutMs)
    {
        Maintain();
        if (_ring.CqReady != 0)
        {
            return;
        }

        int r = _ring.SubmitAndWait(1, timeoutMs);
        if (r < 0 && r != -Errno.EINTR && r != -Errno.EAGAIN && r != -Errno.EBUSY && r != -62 /* ETIME */)
        {
            throw new NativeException("io_uring_enter", -r);
        }
    }

    public override void Wake() => UdpSocketNative.Signal(_eventFd);

    /// <summary>Reads ready CQEs into records until <paramref name="dest"/> or <paramref name="limit"/> is reached.</summary>
    private int Harvest(Span<UdpDatagram> dest, int limit)
    {
        uint ready = _ring.CqReady;
        uint used = 0;
        int n = 0;
        while (used < ready && n < dest.Length && n < limit)
        {
            IoUringCqe* cqe = _ring.PeekCqe(used);
            used++;
            switch (cqe->UserData)
            {
                case TagRecv:
                    if ((cqe->Flags & IoUringAbi.CqeFBuffer) != 0)
                    {
                        NetmemRef netmem = TakeBuffer((ushort)(cqe->Flags >> IoUringAbi.CqeBufferShift));
                        if (cqe->Res >= Headroom)
                        {
                            n += Deliver(netmem, cqe->Res, dest[n..], limit - n);
                        }
                        else
                        {
                            _r.Pool.RecycleDirect(netmem);
                        }
                    }
                    else if (cqe->Res < 0)
                    {
                        _r.CountTermination(-cqe->Res == Errno.ENOBUFS);
                    }

                    if ((cqe->Flags & IoUringAbi.CqeFMore) == 0)
                    {
                        _recvArmed = false;
                    }

                    break;
                case TagWake:
                    _wakeArmed = false;
                    break;
                default:
                    break;
            }
        }

        if (used != 0)
        {
            _ring.AdvanceCq(used);
        }

        return n;
    }

    private NetmemRef TakeBuffer(ushort bid)
    {
        NetmemRef netmem = NetmemRef.FromValue(_bidNetmem[bid]);
        _bidNetmem[bid] = 0;
        _freeBids[_freeBidCount++] = bid;
        return netmem;
    }

    /// <summary>
    /// Parses io_uring_recvmsg_out, the source and the control messages (drop counter, GRO
    /// segment size) at the head of the buffer; the payload follows them.
    /// </summary>
    private int Deliver(NetmemRef netmem, int res, Span<UdpDatagram> dest, int limit)
    {
        byte* b = (byte*)_r.BufferAddress(netmem);
        var hdr = (IoUringRecvmsgOut*)b;
        int copied = res - Headroom;
        bool truncated = (hdr->Flags & UdpSocketNative.MSG_TRUNC) != 0;
        SockAddr src = UdpSocketNative.ReadSockAddr(b + 16, (int)Math.Min(hdr->NameLen, (uint)UdpSocketNative.SockAddrSize), out _);
        int segment = 0;
        if (hdr->ControlLen != 0)
        {
            _r.NoteKernelDrops(UdpSocketNative.ReadControl(b + 16 + UdpSocketNative.SockAddrSize, (int)hdr->ControlLen, out segment));
        }

        return _r.DeliverReceived(netmem, (nint)b, Headroom, copied, (int)hdr->PayloadLen, src, truncated, segment, dest, limit);
    }

    /// <summary>Refills free buffer ids, arms what is not armed, and submits.</summary>
    private void Maintain()
    {
        if (_freeBidCount != 0 && (_freeBidCount >= Math.Max(1, _entries / 8) || !_recvArmed))
        {
            Refill();
        }

        if (!_recvArmed && HasPostedBuffers)
        {
            ArmRecv();
        }

        if (!_wakeArmed)
        {
            ArmWake();
        }

        _ring.Flush();
        if (_ring.HasUnsubmitted)
        {
            int r = _ring.SubmitAndWait(0);
            if (r < 0 && r != -Errno.EINTR && r != -Errno.EAGAIN && r != -Errno.EBUSY)
            {
                throw new NativeException("io_uring_enter", -r);
            }
        }
    }

    /// <summary>Gives each free buffer id a netmem from the pool, in bulk, and publishes them with one tail store.</summary>
    private void Refill()
    {
        int want = _freeBidCount;
        int got = _r.Pool.AllocBulk(_alloc.AsSpan(0, want));
        for (int i = 0; i < got; i++)
        {
            ushort bid = _freeBids[--_freeBidCount];
            NetmemRef netmem = _alloc[i];
            _bidNetmem[bid] = netmem.Value;
            _bufs.Set(i, _r.BufferAddress(netmem), _bufLen, bid);
        }

        if (got != 0)
        {
            _bufs.Publish(got);
        }
    }

    private void ArmRecv()
    {
        IoUringSqe* sqe = _ring.TryGetSqe();
        if (sqe == null)
        {
            return;
        }

        sqe->Opcode = IoUringAbi.OpRecvmsg;
        sqe->Fd = _r.SocketFd;
        sqe->Addr = (ulong)_msg;
        sqe->Len = 1;
        sqe->Ioprio = IoUringAbi.RecvMultishot;
        sqe->Flags = IoUringAbi.SqeBufferSelect;
        sqe->BufGroup = 0;
        sqe->OpFlags = UdpSocketNative.MSG_TRUNC;
        sqe->UserData = TagRecv;
        _recvArmed = true;
        _r.CountArm();
    }

    private void ArmWake()
    {
        IoUringSqe* sqe = _ring.TryGetSqe();
        if (sqe == null)
        {
            return;
        }

        sqe->Opcode = IoUringAbi.OpRead;
        sqe->Fd = _eventFd;
        sqe->Addr = (ulong)_wakeBuf;
        sqe->Len = sizeof(ulong);
        sqe->Off = ulong.MaxValue;
        sqe->UserData = TagWake;
        _wakeArmed = true;
    }

    private void Cancel(ulong tag)
    {
        IoUringSqe* sqe = _ring.TryGetSqe();
        if (sqe != null)
        {
            sqe->Opcode = IoUringAbi.OpAsyncCancel;
            sqe->Fd = -1;
            sqe->Addr = tag;
            sqe->UserData = TagCancel;
        }
    }

    public override void Shutdown()
    {
        if (_recvArmed)
        {
            Cancel(TagRecv);
        }

        if (_wakeArmed)
        {
            Cancel(TagWake);
        }

        // Bounded: the kernel answers a cancel at once; the bound only guards against a kernel bug.
        for (int round = 0; round < 200 && (_recvArmed || _wakeArmed); round++)
        {
            _ = _ring.SubmitAndWait(1, 50);
            DrainAtClose();
        }

        if (_recvArmed || _wakeArmed)
        {
            // The kernel may still write into posted buffers: leave them out of the pool (it lingers) rather than reuse them.
            _r.NoteShutdownIncomplete();
            return;
        }

        _ring.UnregisterBufRing(0);
        for (int bid = 0; bid < _entries; bid++)
        {
            if (_bidNetmem[bid] != 0)
            {
                _r.Pool.RecycleDirect(NetmemRef.FromValue(_bidNetmem[bid]));
                _bidNetmem[bid] = 0;
            }
        }

        _freeBidCount = _entries;
    }

    /// <summary>Closing: datagrams still completing go straight back to the pool.</summary>
    private void DrainAtClose()
    {
        uint ready = _ring.CqReady;
        for (uint i = 0; i < ready; i++)
        {
            IoUringCqe* cqe = _ring.PeekCqe(i);
            if (cqe->UserData == TagRecv)
            {
                if ((cqe->Flags & IoUringAbi.CqeFBuffer) != 0)
                {
                    _r.Pool.RecycleDirect(TakeBuffer((ushort)(cqe->Flags >> IoUringAbi.CqeBufferShift)));
                    _r.CountDiscardedAtClose();
                }

                if ((cqe->Flags & IoUringAbi.CqeFMore) == 0)
                {
                    _recvArmed = false;
                }
            }
            else if (cqe->UserData == TagWake)
            {
                _wakeArmed = false;
            }
        }

        _ring.AdvanceCq(ready);
    }

    /// <summary>True for the errors that mean "io_uring is not available here", as opposed to a bug.</summary>
    public static bool IsUnavailable(int errno) =>
        errno is ENOSYS or Errno.EPERM or Errno.EACCES or Errno.EINVAL or Errno.EOPNOTSUPP or Errno.ENOMEM or ECANCELED;

    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _ring.Dispose();
        _bufs.Dispose();
        NativeMemory.Free(_msg);
        NativeMemory.Free(_wakeBuf);
    }
}
