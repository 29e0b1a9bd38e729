using System.Runtime.CompilerServices;

namespace Netmem.Native;

/// <summary>
/// A provided-buffer ring (IORING_REGISTER_PBUF_RING): page-aligned memory of
/// <see cref="Entries"/> <see cref="IoUringBuf"/> slots that the application fills and the
/// kernel consumes, one buffer per received datagram. The application owns the tail (the
/// <c>resv</c> field of slot 0); the kernel keeps its head to itself.
/// </summary>
/// <remarks>
/// The producer writes a slot's address, length and buffer id with plain stores, then publishes
/// a batch with one release store of the 16-bit tail (<see cref="Publish"/>), so the kernel never
/// sees a tail that covers a slot not yet written. Slot 0's tail field is never written by
/// <see cref="Set"/>: it writes the three fields one by one.
/// </remarks>
internal sealed unsafe class IoUringBufRing : IDisposable
{
    private readonly IoUringBuf* _ring;
    private readonly nuint _bytes;
    private readonly ushort _mask;
    private ushort _tail;
    private int _disposed;

    /// <summary>Maps a ring of <paramref name="entries"/> (a power of two, at most 32768) slots.</summary>
    public IoUringBufRing(int entries)
    {
        if (entries < 1 || entries > IoUringAbi.MaxBufRingEntries || (entries & (entries - 1)) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(entries), entries, "a buffer ring has a power of two entries, 1..32768");
        }

        Entries = entries;
        _mask = (ushort)(entries - 1);
        _bytes = (nuint)Math.Max(entries * sizeof(IoUringBuf), Sys.PageSize);
        _ring = (IoUringBuf*)Sys.Mmap(0, _bytes, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_PRIVATE | Sys.MAP_ANONYMOUS | Sys.MAP_POPULATE, -1, 0);
    }

    public int Entries { get; }

    /// <summary>The ring's address, to register.</summary>
    public void* Address => _ring;

    /// <summary>Buffers published so far (the tail, wrapping at 2^16).</summary>
    public ushort Tail => _tail;

    /// <summary>Writes the slot <paramref name="offset"/> past the tail; visible to the kernel after <see cref="Publish"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Set(int offset, nint address, int length, ushort bid)
    {
        IoUringBuf* b = _ring + ((_tail + offset) & _mask);
        b->Addr = (ulong)address;
        b->Len = (uint)length;
        b->Bid = bid;
    }

    /// <summary>Publishes <paramref name="count"/> slots written with <see cref="Set"/> (release store of the tail).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Publish(int count)
    {
        _tail = (ushort)(_tail + count);
        Volatile.Write(ref _ring->Resv, _tail);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            _ = Libc.Munmap((nint)_ring, _bytes);
        }
    }
}
