using System.Runtime.InteropServices;
using Netmem.Native;

namespace Netmem.Drivers.Udp;

/// <summary>
/// The fallback path: <c>recvmmsg(2)</c> batches straight into pool netmems. Slot <c>i</c> of
/// the batch owns one netmem (its payload buffer, at offset 0) and its own name and control
/// areas; a received slot's netmem leaves with the record and the slot takes a fresh one from
/// the pool before the next call.
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
        _controls = (byte*)NativeMemory.AlignedAlloc((nuint)(batch * UdpSocketNative.DropCmsgSpace), 8);
        _slot = new nuint[batch];
    }

    public override UdpReceivePath Kind => UdpReceivePath.RecvMmsg;

    public override int BufferCapacity => _bufLen;

    public override bool HasPostedBuffers => _slot[0] != 0 || Fill() > 0;

    public override int Poll(Span<UdpDatagram> dest, int limit)
    {
        int k = Math.Min(Math.Min(Fill(), dest.Length), limit);
        if (k == 0)
        {
            return 0;
        }

        for (int i = 0; i < k; i++)
        {
            MsgHdr* h = &_msgs[i].Hdr;
            h->NameLen = UdpSocketNative.SockAddrSize;
            h->ControlLen = UdpSocketNative.DropCmsgSpace;
            h->Flags = 0;
        }

        int n = RecvMmsg.Receive(_r.SocketFd, _msgs, k, UdpSocketNative.MSG_TRUNC);
        for (int i = 0; i < n; i++)
        {
            MsgHdr* h = &_msgs[i].Hdr;
            NetmemRef netmem = NetmemRef.FromValue(_slot[i]);
            _slot[i] = 0;
            int original = (int)_msgs[i].Len;
            int copied = Math.Min(original, _bufLen);
            SockAddr src = UdpSocketNative.ReadSockAddr(_names + (i * UdpSocketNative.SockAddrSize), (int)Math.Min(h->NameLen, (uint)UdpSocketNative.SockAddrSize), out _);
            if (h->ControlLen != 0)
            {
                _r.NoteKernelDrops(UdpSocketNative.ReadDropCounter(_controls + (i * UdpSocketNative.DropCmsgSpace), (int)h->ControlLen));
            }

            dest[i] = _r.MakeRecord(netmem, _r.BufferAddress(netmem), 0, copied, original, src, (h->Flags & UdpSocketNative.MSG_TRUNC) != 0);
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
                h->Control = _controls + (i * UdpSocketNative.DropCmsgSpace);
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
            }
        }
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
