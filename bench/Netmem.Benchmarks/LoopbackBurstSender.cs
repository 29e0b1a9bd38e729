using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Netmem.Native;

namespace Netmem.Benchmarks;

/// <summary>
/// The UDP receive benchmarks' sender: bursts of identical loopback datagrams, each burst one
/// <c>sendmmsg</c> on a socket connected to the target (one socket per target, kept), so every
/// receiver under test is fed by the same kernel send path.
/// </summary>
internal sealed unsafe partial class LoopbackBurstSender : IDisposable
{
    private readonly int _burst;
    private readonly Dictionary<EndPoint, Socket> _sockets = [];
    private MMsgHdr* _msgs;
    private IoVec* _iovs;
    private byte* _payload;

    /// <summary>Datagrams of <paramref name="size"/> bytes (0x5A), at most <paramref name="burst"/> per <c>sendmmsg</c>.</summary>
    public LoopbackBurstSender(int size, int burst)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, 2048);
        _burst = burst;
        _payload = (byte*)NativeMemory.AllocZeroed(2048);
        new Span<byte>(_payload, size).Fill(0x5A);
        _msgs = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(burst * sizeof(MMsgHdr)));
        _iovs = (IoVec*)NativeMemory.AllocZeroed((nuint)(burst * sizeof(IoVec)));
        for (int i = 0; i < burst; i++)
        {
            _iovs[i] = new IoVec { Base = (nint)_payload, Length = (nuint)size };
            _msgs[i].Hdr.Iov = &_iovs[i];
            _msgs[i].Hdr.IovLen = 1;
        }
    }

    /// <summary>Sends <paramref name="count"/> datagrams to <paramref name="target"/>, in bursts.</summary>
    public void Send(EndPoint target, int count)
    {
        for (int sent = 0; sent < count; sent += _burst)
        {
            SendBurst(target, Math.Min(_burst, count - sent));
        }
    }

    /// <summary>One <c>sendmmsg</c> of <paramref name="count"/> (at most the burst) datagrams to <paramref name="target"/>.</summary>
    public void SendBurst(EndPoint target, int count)
    {
        if (!_sockets.TryGetValue(target, out Socket? s))
        {
            s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            s.Connect(target);
            _sockets[target] = s;
        }

        int fd = (int)s.Handle;
        int done = 0;
        while (done < count)
        {
            int r = Sendmmsg(fd, _msgs + done, (uint)(count - done), 0);
            if (r < 0)
            {
                throw new NativeException("sendmmsg", Marshal.GetLastPInvokeError());
            }

            done += r;
        }
    }

    /// <summary>Closes the socket connected to <paramref name="target"/> (a target that goes away).</summary>
    public void Forget(EndPoint target)
    {
        if (_sockets.Remove(target, out Socket? s))
        {
            s.Dispose();
        }
    }

    public void Dispose()
    {
        foreach (Socket s in _sockets.Values)
        {
            s.Dispose();
        }

        _sockets.Clear();
        NativeMemory.Free(_msgs);
        NativeMemory.Free(_iovs);
        NativeMemory.Free(_payload);
        _msgs = null;
        _iovs = null;
        _payload = null;
    }

    [LibraryImport("libc", EntryPoint = "sendmmsg", SetLastError = true)]
    private static partial int Sendmmsg(int fd, MMsgHdr* msgs, uint vlen, int flags);
}
