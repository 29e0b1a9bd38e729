using System.Runtime.InteropServices;
using Netmem.Native;

namespace Netmem.Drivers.Udp;

/// <summary>
/// The fallback path: <c>recvmmsg(2)</c> batches straight into pool netmems. Slot <c>i</c> of
/// the batch owns one netmem (its payload buffer, at offset 0) and its own name and control
/// areas; a received slot's netmem leaves with the record and the slot takes a fresh one from
/// the pool before the next call. With GRO one slot can hold many datagrams: slots received but
/// not yet handed out (the caller's batch was full) are handed out first by the next poll, and
/// the next call is made only when none is left.
/// </summary>
internal sealed unsafe class UdpMmsgPath : UdpPathBase
{
    private readonly UdpReceiver _r;
    private readonly int _batch;
    private readonly int _eventFd;
    private readonly int _bufLen;
    private readonly MMsgHdr* _msgs;
    private readonly IoVec* _iovs;
    private readonly byte* _names;
    private readonly byte* _controls;

    /// <summary>The netmem in each slot; 0 when the slot needs one.</summary>
    private readonly nuint[] _slot;

    /// <summary>Slots the last call filled, and the next of them to hand out.</summary>
    private int _received;
    private int _next;
    private int _disposed;

    public UdpMmsgPath(UdpReceiver receiver, int batch, int eventFd)
    {
        _r = receiver;
        _batch = batch;
        _eventFd = eventFd;
        _bufLen = receiver.Pool.NetmemSize;
        _msgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(MMsgHdr)));
        _iovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(batch * sizeof(IoVec)));
        _names = (byte*)NativeMemory.AllocZeroed((nuint)(batch * UdpSocketNative.SockAddrSize));
        _controls = (byte*)NativeMemory.AlignedAlloc((nuint)(batch * UdpSocketNative.ControlSpace), 8);
        _slot = new nuint[batch];
    }

    public override UdpReceivePath Kind => UdpReceivePath.RecvMmsg;

    public override int BufferCapacity => _bufLen;

    public override bool HasPostedBuffers => _slot[0] != 0 || Fill() > 0;

    public override int Poll(Span<UdpDatagram> dest, int limit)
    {
        int n = HandOut(dest, limit);
        if (_next < _received || n == dest.Length || n == limit)
        {
            return n;
        }

        int k = Math.Min(Math.Min(Fill(), dest.Length - n), limit - n);
        if (k == 0)
        {
            return n;
        }

        for (int i = 0; i < k; i++)
        {
            MsgHdr* h = &_msgs[i].Hdr;
            h->NameLen = UdpSocketNative.SockAddrSize;
            h->ControlLen = UdpSocketNative.ControlSpace;
            h->Flags = 0;
        }

        _received = Math.Max(0, RecvMmsg.Receive(_r.SocketFd, _msgs, k, UdpSocketNative.MSG_TRUNC));
        _next = 0;
        return n + HandOut(dest[n..], limit - n);
    }

    /// <summary>Turns received slots into records, in order, until the batch or the limit is full.</summary>
    private int HandOut(Span<UdpDatagram> dest, int limit)
    {
        int n = 0;
        while (_next < _received && n < dest.Length && n < limit)
        {
            int i = _next++;
            MsgHdr* h = &_msgs[i].Hdr;
            NetmemRef netmem = NetmemRef.FromValue(_slot[i]);
            _slot[i] = 0;
            int original = (int)_msgs[i].Len;
            int copied = Math.Min(original, _bufLen);
            SockAddr src = UdpSocketNative.ReadSockAddr(_names + (i * UdpSocketNative.SockAddrSize), (int)Math.Min(h->NameLen, (uint)UdpSocketNative.SockAddrSize), out _);
            int segment = 0;
            if (h->ControlLen != 0)
            {
                _r.NoteKernelDrops(UdpSocketNative.ReadControl(_controls + (i * UdpSocketNative.ControlSpace), (int)h->ControlLen, out segment));
            }

            n += _r.DeliverReceived(netmem, _r.BufferAddress(netmem), 0, copied, original, src, (h->Flags & UdpSocketNative.MSG_TRUNC) != 0, segment, dest[n..], limit - n);
        }

        return n;
    }

    /// <summary>Gives empty slots a netmem, front first; returns how many leading slots are ready.</summary>
    private int Fill()
    {
        int i = 0;
        for (; i < _batch; i++)
        {
            if (_slot[i] == 0)
            {
                NetmemRef netmem = _r.Pool.AllocNetmem();
                if (netmem.IsNull)
                {
                    break;
                }

                _slot[i] = netmem.Value;
                _iovs[i] = new IoVec { Base = _r.BufferAddress(netmem), Length = (nuint)_bufLen };
                MsgHdr* h = &_msgs[i].Hdr;
                h->Iov = &_iovs[i];
                h->IovLen = 1;
                h->Name = _names + (i * UdpSocketNative.SockAddrSize);
                h->Control = _controls + (i * UdpSocketNative.ControlSpace);
            }
        }

        return i;
    }

    public override void Wait(int timeoutMs)
    {
        Span<PollFd> fds = [new PollFd { Fd = _r.SocketFd, Events = Sys.POLLIN }, new PollFd { Fd = _eventFd, Events = Sys.POLLIN }];
        if (Sys.Poll(fds, timeoutMs) > 0 && (fds[1].Revents & Sys.POLLIN) != 0)
        {
            UdpSocketNative.Drain(_eventFd);
        }
    }

    public override void Wake() => UdpSocketNative.Signal(_eventFd);

    public override void Shutdown()
    {
        for (int i = 0; i < _batch; i++)
        {
            if (_slot[i] != 0)
            {
                _r.Pool.RecycleDirect(NetmemRef.FromValue(_slot[i]));
                _slot[i] = 0;
                if (i >= _next && i < _received)
                {
                    _r.CountDiscardedAtClose();
                }
            }
        }

        _received = 0;
        _next = 0;
    }

    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
        NativeMemory.Free(_names);
        NativeMemory.AlignedFree(_controls);
    }
}
