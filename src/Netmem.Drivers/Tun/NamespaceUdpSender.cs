using System.Net;
using System.Net.Sockets;
using Netmem.Native;

namespace Netmem.Drivers.Tun;

/// <summary>
/// Sends UDP datagrams with an ordinary kernel socket from inside a <see cref="NetNamespace"/>
/// to an address that namespace routes into a <see cref="TunDevice"/> (by default
/// <see cref="TunDevice.PeerIPv4"/> or <see cref="TunDevice.PeerIPv6"/>), so the kernel transmits
/// them into the TUN and a driver reads them as received packets.
/// </summary>
/// <remarks>
/// <para>
/// The destination lies inside the namespace's own TUN subnet: the datagrams never leave the
/// namespace, and the constructor refuses any address outside 198.18.0.0/15 and fd00::/8
/// (<see cref="TunAddressPolicy"/>). The socket is created and connected on a thread that joined
/// the namespace and keeps that namespace afterwards, so <see cref="Send"/> works from any thread.
/// </para>
/// <para>
/// Counts are bounded: a sender refuses to send more than <see cref="MaxDatagrams"/> datagrams.
/// The TUN drops what does not fit in a queue's ring (txqueuelen), silently for the sender, so
/// send in bursts no larger than the ring and read in between.
/// </para>
/// </remarks>
public sealed class NamespaceUdpSender : IDisposable
{
    /// <summary>The default bound on datagrams per sender.</summary>
    public const int DefaultMaxDatagrams = 100_000;

    /// <summary>The connected datagram socket, living in the namespace.</summary>
    private readonly Socket _socket;

    /// <summary>
    /// Creates a UDP socket in <paramref name="ns"/> and connects it to <paramref name="destination"/>.
    /// The namespace must already route the destination (see <see cref="TunDevice.Configure"/>).
    /// </summary>
    /// <exception cref="ArgumentException">The destination is outside the allowed test ranges.</exception>
    public NamespaceUdpSender(NetNamespace ns, IPEndPoint destination, int maxDatagrams = DefaultMaxDatagrams)
    {
        ArgumentNullException.ThrowIfNull(ns);
        ArgumentNullException.ThrowIfNull(destination);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxDatagrams);
        if (!TunAddressPolicy.IsAllowed(destination.Address))
        {
            throw new ArgumentException($"{destination.Address} is outside 198.18.0.0/15 and fd00::/8; the sender only targets addresses routed into a Netmem TUN inside its namespace.", nameof(destination));
        }

        Destination = destination;
        MaxDatagrams = maxDatagrams;
        _socket = ns.Run(() =>
        {
            var s = new Socket(destination.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                s.Connect(destination);
                return s;
            }
            catch
            {
                s.Dispose();
                throw;
            }
        });
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    /// <summary>Where datagrams go: an address inside the namespace, routed into its TUN.</summary>
    public IPEndPoint Destination { get; }

    /// <summary>The socket's local address and port (the source of every datagram).</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>The most datagrams this sender will send.</summary>
    public int MaxDatagrams { get; }

    /// <summary>Datagrams sent so far.</summary>
    public int SentCount { get; private set; }

    /// <summary>Sends one datagram. Not thread-safe.</summary>
    /// <exception cref="InvalidOperationException"><see cref="MaxDatagrams"/> already sent.</exception>
    public void Send(ReadOnlySpan<byte> payload)
    {
        if (SentCount >= MaxDatagrams)
        {
            throw new InvalidOperationException($"This sender is bounded to {MaxDatagrams} datagrams.");
        }

        int n = _socket.Send(payload, SocketFlags.None);
        if (n != payload.Length)
        {
            throw new InvalidOperationException($"Sent {n} of {payload.Length} bytes.");
        }

        SentCount++;
    }

    /// <summary>
    /// Sends <paramref name="count"/> datagrams carrying the pattern of sequence numbers
    /// <paramref name="firstSequence"/>.., sizes given by <paramref name="sizeOf"/>.
    /// </summary>
    public void SendPattern(int firstSequence, int count, Func<int, int> sizeOf)
    {
        ArgumentNullException.ThrowIfNull(sizeOf);
        byte[] buffer = new byte[65507];
        for (int i = 0; i < count; i++)
        {
            int seq = firstSequence + i;
            Span<byte> payload = buffer.AsSpan(0, sizeOf(seq));
            FillPattern(seq, payload);
            Send(payload);
        }
    }

    /// <summary>Fills <paramref name="payload"/> with the deterministic pattern for <paramref name="sequence"/>.</summary>
    public static void FillPattern(int sequence, Span<byte> payload)
    {
        for (int i = 0; i < payload.Length; i++)
        {
            payload[i] = PatternByte(sequence, i);
        }
    }

    /// <summary>The index of the first byte that differs from the pattern for <paramref name="sequence"/>, or -1.</summary>
    public static int FindPatternMismatch(int sequence, ReadOnlySpan<byte> payload)
    {
        for (int i = 0; i < payload.Length; i++)
        {
            if (payload[i] != PatternByte(sequence, i))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Closes the sender's socket; datagrams already sent stay queued in the kernel.</summary>
    public void Dispose() => _socket.Dispose();

    private static byte PatternByte(int sequence, int index) => (byte)((sequence * 131) + (index * 7) + (sequence >> 8) + (index >> 8));
}
