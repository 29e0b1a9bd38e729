using System.Net;
using System.Net.Sockets;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.Udp;

namespace Netmem.Tests.UdpRx;

/// <summary>
/// Loopback UDP traffic for receiver tests: sender threads with self-verifying payloads
/// (<see cref="FrameBuilder.FillSequencePayload"/> of a sequence that names sender and index,
/// with a size derived from it), paced by credit on what the receiver consumed so the socket
/// never overflows, and a tally that checks each datagram once.
/// </summary>
internal sealed class UdpTraffic : IDisposable
{
    private readonly IPEndPoint _target;
    private readonly int _senders;
    private readonly int _perSender;
    private readonly int _window;
    private readonly Func<ulong, int> _sizeOf;
    private readonly Thread[] _threads;
    private readonly bool[][] _seen;
    private long _sent;
    private long _consumed;
    private Exception? _senderError;

    public UdpTraffic(IPEndPoint target, int senders, int perSender, Func<ulong, int> sizeOf, int window = 256)
    {
        _target = target;
        _senders = senders;
        _perSender = perSender;
        _window = window;
        _sizeOf = sizeOf;
        _threads = new Thread[senders];
        _seen = new bool[senders][];
        for (int s = 0; s < senders; s++)
        {
            _seen[s] = new bool[perSender];
        }
    }

    public long Total => (long)_senders * _perSender;

    public long Sent => Volatile.Read(ref _sent);

    /// <summary>Datagrams received, verified and counted once.</summary>
    public long Verified { get; private set; }

    /// <summary>Datagrams whose payload, length or sequence was wrong, or seen twice.</summary>
    public long Bad { get; private set; }

    /// <summary>The ports the senders send from.</summary>
    public int[] SenderPorts { get; private set; } = [];

    /// <summary>Sizes mixed over 8..<paramref name="max"/> bytes from the sequence.</summary>
    public static Func<ulong, int> Mixed(int max) => seq => 8 + (int)(((seq * 0x9E3779B97F4A7C15UL) >> 40) % (ulong)(max - 7));

    public static ulong Seq(int sender, int index) => ((ulong)sender << 32) | (uint)index;

    public void Start()
    {
        var ports = new int[_senders];
        using var ready = new CountdownEvent(_senders);
        for (int s = 0; s < _senders; s++)
        {
            int sender = s;
            _threads[s] = new Thread(() => Send(sender, ports, ready)) { IsBackground = true, Name = "udp-test-sender" + s };
            _threads[s].Start();
        }

        ready.Wait();
        SenderPorts = ports;
    }

    private void Send(int sender, int[] ports, CountdownEvent ready)
    {
        try
        {
            using var socket = new Socket(_target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            socket.Bind(new IPEndPoint(_target.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0));
            ports[sender] = ((IPEndPoint)socket.LocalEndPoint!).Port;
            ready.Signal();
            byte[] buf = new byte[65536];
            long deadline = Environment.TickCount64 + 120_000;
            for (int i = 0; i < _perSender; i++)
            {
                ulong seq = Seq(sender, i);
                int len = _sizeOf(seq);
                FrameBuilder.FillSequencePayload(buf.AsSpan(0, len), seq);

                // Credit: at most a window of datagrams in the socket, so loopback never drops.
                SpinWait spin = default;
                while (Volatile.Read(ref _sent) - Volatile.Read(ref _consumed) >= _window)
                {
                    spin.SpinOnce();
                    if (Environment.TickCount64 > deadline)
                    {
                        throw new TimeoutException($"sender {sender}: the receiver consumed nothing for too long ({Sent} sent, {Volatile.Read(ref _consumed)} consumed)");
                    }
                }

                Interlocked.Increment(ref _sent);
                socket.SendTo(buf.AsSpan(0, len), SocketFlags.None, _target);
            }
        }
        catch (Exception e)
        {
            _senderError = e;
            if (ready.CurrentCount > 0)
            {
                ready.Signal();
            }
        }
    }

    /// <summary>
    /// Sends <paramref name="count"/> datagrams from one new socket on the calling thread, without
    /// pacing (the caller keeps the count within the socket's buffer). Returns the sender's port.
    /// </summary>
    public static int SendNow(IPEndPoint target, int count, Func<ulong, int> sizeOf, int sender = 0)
    {
        using var socket = new Socket(target.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        socket.Bind(new IPEndPoint(target.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0));
        byte[] buf = new byte[65536];
        for (int i = 0; i < count; i++)
        {
            ulong seq = Seq(sender, i);
            int len = sizeOf(seq);
            FrameBuilder.FillSequencePayload(buf.AsSpan(0, len), seq);
            socket.SendTo(buf.AsSpan(0, len), SocketFlags.None, target);
        }

        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    /// <summary>Checks one received datagram and marks it seen.</summary>
    public bool Check(ReadOnlySpan<byte> payload, in UdpDatagram d)
    {
        bool ok = FrameBuilder.VerifySequencePayload(payload, out ulong seq) && !d.Truncated;
        int sender = (int)(seq >> 32);
        int index = (int)(uint)seq;
        ok = ok && sender < _senders && index < _perSender && payload.Length == _sizeOf(seq) && !_seen[sender][index];
        if (ok)
        {
            _seen[sender][index] = true;
            Verified++;
        }
        else
        {
            Bad++;
        }

        return ok;
    }

    /// <summary>Gives the senders credit for datagrams the receiver consumed.</summary>
    public void Consumed(int n) => Interlocked.Add(ref _consumed, n);

    /// <summary>Receives and verifies until every datagram came, a sender failed, or the bound passed.</summary>
    public void Drain(UdpReceiver rx, int batchSize = 64, int boundMs = 120_000)
    {
        var batch = new UdpDatagram[batchSize];
        long deadline = Environment.TickCount64 + boundMs;
        while (Verified + Bad < Total && _senderError is null && Environment.TickCount64 < deadline)
        {
            int n = rx.Receive(batch, 100);
            for (int i = 0; i < n; i++)
            {
                Check(rx.GetPayload(batch[i]), batch[i]);
            }

            rx.Return(batch.AsSpan(0, n));
            Consumed(n);
        }

        if (_senderError is not null)
        {
            throw new InvalidOperationException("a sender failed", _senderError);
        }
    }

    public void Join()
    {
        foreach (Thread t in _threads)
        {
            t?.Join();
        }
    }

    public void Dispose()
    {
        Volatile.Write(ref _consumed, long.MaxValue / 2);
        Join();
    }
}
