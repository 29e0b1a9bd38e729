using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Netmem.Native;

namespace Netmem.Benchmarks;

/// <summary>
/// The UDP receive benchmarks' sender: bursts of identical loopback datagrams on a socket
/// connected to the target (one socket per target, kept), so every receiver under test is fed by
/// the same kernel send path. A burst is one <c>sendmmsg</c> of separate datagrams, or with
/// <see cref="LoopbackSend.Gso"/> as few UDP GSO sends (<c>UDP_SEGMENT</c>) as carry it, the way
/// QUIC stacks send: the kernel cuts each send into datagrams on delivery, or hands it whole to
/// a receiver that asked for UDP_GRO.
/// </summary>
internal sealed unsafe partial class LoopbackBurstSender : IDisposable
{
    private readonly int _burst;
    private readonly int _size;
    private readonly LoopbackSend _mode;
    private readonly Dictionary<EndPoint, Socket> _sockets = [];
    private MMsgHdr* _msgs;
    private IoVec* _iovs;
    private byte* _payload;

    /// <summary>Datagrams of <paramref name="size"/> bytes (0x5A), at most <paramref name="burst"/> per <c>sendmmsg</c> (or per burst of GSO sends).</summary>
    public LoopbackBurstSender(int size, int burst, LoopbackSend mode = LoopbackSend.Datagrams)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(size, 2048);
        _burst = burst;
        _size = size;
        _mode = mode;
        _payload = (byte*)NativeMemory.AllocZeroed(MaxGsoPayload);
        new Span<byte>(_payload, MaxGsoPayload).Fill(0x5A);
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

    /// <summary>The most UDP payload one IPv4 send carries (65,535 less the IP and UDP headers).</summary>
    public const int MaxGsoPayload = 65507;

    /// <summary>Datagrams one GSO send carries: the kernel's 64-segment limit, or fewer when the payload limit says so.</summary>
    public int DatagramsPerGsoSend => Math.Min(64, MaxGsoPayload / _size);

    /// <summary>One burst of <paramref name="count"/> (at most the burst) datagrams to <paramref name="target"/>.</summary>
    public void SendBurst(EndPoint target, int count)
    {
        if (!_sockets.TryGetValue(target, out Socket? s))
        {
            s = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            if (_mode == LoopbackSend.Gso)
            {
                s.SetRawSocketOption(UdpSocketNative.IPPROTO_UDP, UdpSocketNative.UDP_SEGMENT, BitConverter.GetBytes(_size));
            }

            s.Connect(target);
            _sockets[target] = s;
        }

        if (_mode == LoopbackSend.Gso)
        {
            var payload = new ReadOnlySpan<byte>(_payload, MaxGsoPayload);
            for (int sent = 0; sent < count;)
            {
                int k = Math.Min(DatagramsPerGsoSend, count - sent);
                s.Send(payload[..(k * _size)]);
                sent += k;
            }

            return;
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

/// <summary>How <see cref="LoopbackBurstSender"/> sends a burst.</summary>
public enum LoopbackSend
{
    /// <summary>One <c>sendmmsg</c> of separate datagrams.</summary>
    Datagrams,

    /// <summary>UDP GSO: each send carries up to 64 datagrams of one size (<c>UDP_SEGMENT</c>).</summary>
    Gso,
}
