using System.Net.Sockets;
using Netmem.Drivers.Parsing;

namespace Netmem.Tool.Relay;

/// <summary>
/// The far end of a relay on kernel sockets (tun, xdp): a thread that reads an ordinary kernel
/// UDP socket (bound in a namespace the rig made) and verifies every datagram byte for byte as a
/// sequence payload of the expected size, sequence numbers never going backwards. A socket error other than a receive
/// timeout ends the thread and is kept in <see cref="Fault"/>.
/// </summary>
internal sealed class KernelUdpVerifier
{
    private readonly Socket _socket;
    private readonly int _payload;
    private readonly Thread _thread;
    private volatile bool _stop;
    private long _received;
    private long _verified;
    private long _mismatches;
    private long _bytes;

    public KernelUdpVerifier(Socket socket, int payload)
    {
        _socket = socket;
        _payload = payload;
        _thread = new Thread(Loop) { IsBackground = true, Name = "relay-far-end" };
        _thread.Start();
    }

    /// <summary>Datagrams received.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Datagrams of the right size and content.</summary>
    public long Verified => Interlocked.Read(ref _verified);

    /// <summary>Datagrams of the wrong size or content, or out of order.</summary>
    public long Mismatches => Interlocked.Read(ref _mismatches);

    /// <summary>Payload bytes the kernel copied into the verifier's buffer.</summary>
    public long BytesCopied => Interlocked.Read(ref _bytes);

    /// <summary>What ended the thread early, if anything.</summary>
    public Exception? Fault { get; private set; }

    /// <summary>Reads what is still queued, then ends the thread.</summary>
    public void Stop()
    {
        _stop = true;
        _thread.Join();
    }

    private void Loop()
    {
        byte[] buffer = new byte[65536];
        ulong expected = 0;
        try
        {
            while (!_stop || _socket.Available > 0)
            {
                if (!_socket.Poll(20_000, SelectMode.SelectRead))
                {
                    continue;
                }

                int n = _socket.Receive(buffer, SocketFlags.None);
                ulong seq = 0;
                bool ok = n == _payload && FrameBuilder.VerifySequencePayload(buffer.AsSpan(0, n), out seq) && (n < 8 || seq >= expected);
                Interlocked.Increment(ref ok ? ref _verified : ref _mismatches);
                Interlocked.Add(ref _bytes, n);
                Interlocked.Increment(ref _received);
                if (ok && n >= 8)
                {
                    expected = seq + 1;
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            Fault = e;
        }
    }
}
