using System.Runtime.InteropServices;
using Netmem.Native;

namespace Netmem.Benchmarks;

/// <summary>
/// Proves that a UDP socket holds exactly the datagrams a benchmark's setup queued in it, from
/// the kernel's own accounting (<c>SO_MEMINFO</c>): the receive memory charged to the socket is
/// the count times one datagram's <c>truesize</c> (measured once with a single datagram), and
/// the socket's drop counter did not move. A queue that does not hold them all fails the setup
/// with the figures, instead of a benchmark that silently measures fewer datagrams.
/// </summary>
internal static unsafe class QueuedDatagramCheck
{
    private const int SOL_SOCKET = 1;
    private const int SO_RCVBUF = 8;
    private const int SO_RCVBUFFORCE = 33;
    private const int SO_MEMINFO = 55;

    /// <summary>SK_MEMINFO_VARS of include/uapi/linux/sock_diag.h.</summary>
    private const int MemInfoVars = 9;

    /// <summary>The socket's receive memory (sk_rmem_alloc), its limit (sk_rcvbuf) and its drop counter (sk_drops).</summary>
    public readonly record struct MemInfo(uint RmemAlloc, uint RcvBuf, uint Drops);

    /// <summary>getsockopt(SO_MEMINFO): SK_MEMINFO_RMEM_ALLOC (0), SK_MEMINFO_RCVBUF (1), SK_MEMINFO_DROPS (8).</summary>
    public static MemInfo Read(int fd)
    {
        uint* v = stackalloc uint[MemInfoVars];
        uint len = MemInfoVars * sizeof(uint);
        if (Libc.Getsockopt(fd, SOL_SOCKET, SO_MEMINFO, v, &len) != 0)
        {
            throw new NativeException("getsockopt(SO_MEMINFO)", Marshal.GetLastPInvokeError());
        }

        if (len < MemInfoVars * sizeof(uint))
        {
            throw new InvalidOperationException($"SO_MEMINFO returned {len} bytes; SK_MEMINFO_DROPS needs {MemInfoVars * sizeof(uint)}");
        }

        return new MemInfo(v[0], v[1], v[8]);
    }

    /// <summary>Asks for <paramref name="bytes"/> of receive buffer: SO_RCVBUFFORCE as root, else SO_RCVBUF (capped by net.core.rmem_max).</summary>
    public static void EnlargeReceiveBuffer(int fd, int bytes)
    {
        if (Libc.Setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(int)) != 0
            && Libc.Setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(int)) != 0)
        {
            throw new NativeException("setsockopt(SO_RCVBUF)", Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>
    /// Before a setup sends: the socket must be empty (what the last measured drain left would
    /// otherwise be counted again). Returns its drop counter, to compare after the send.
    /// </summary>
    public static uint ExpectEmpty(int fd, string what)
    {
        MemInfo m = Read(fd);
        if (m.RmemAlloc != 0)
        {
            throw new InvalidOperationException($"{what}: the socket still holds {m.RmemAlloc} bytes of datagrams before the setup sends");
        }

        return m.Drops;
    }

    /// <summary>
    /// As <see cref="ExpectQueued"/>, for a path where the kernel may finish the delivery after
    /// the send returned (a veth's receive runs in softirq context, possibly in ksoftirqd):
    /// waits up to <paramref name="timeoutMs"/> for the datagrams to arrive or a drop to show.
    /// </summary>
    public static void WaitQueued(int fd, string what, int count, uint truesize, uint dropsBefore, int timeoutMs = 5000)
    {
        long expected = (long)count * truesize;
        long deadline = Environment.TickCount64 + timeoutMs;
        SpinWait spin = default;
        while (Environment.TickCount64 < deadline)
        {
            MemInfo m = Read(fd);
            if (m.RmemAlloc >= expected || m.Drops != dropsBefore)
            {
                break;
            }

            spin.SpinOnce();
        }

        ExpectQueued(fd, what, count, truesize, dropsBefore);
    }

    /// <summary>
    /// After a setup sent <paramref name="count"/> datagrams of <paramref name="truesize"/> bytes
    /// each: all of them must be queued and none dropped.
    /// </summary>
    public static void ExpectQueued(int fd, string what, int count, uint truesize, uint dropsBefore)
    {
        MemInfo m = Read(fd);
        long expected = (long)count * truesize;
        if (m.Drops != dropsBefore || m.RmemAlloc != expected)
        {
            throw new InvalidOperationException(
                $"{what}: {count} datagrams of truesize {truesize} should hold {expected} bytes; the socket holds {m.RmemAlloc} " +
                $"(about {m.RmemAlloc / Math.Max(1, truesize)} datagrams) of its {m.RcvBuf}-byte buffer and dropped {m.Drops - dropsBefore}. " +
                "The receive buffer is too small: run as root (SO_RCVBUFFORCE) or raise net.core.rmem_max, or queue fewer.");
        }
    }
}
