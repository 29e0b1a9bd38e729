using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Netmem.Rings;

/// <summary>
/// A bounded, lock-free, multi-producer multi-consumer ring of pointer-sized values, with bulk
/// enqueue and dequeue. The page pool's return path for pages freed away from the consumer.
/// </summary>
/// <remarks>
/// <para>Slot protocol (after Vyukov's bounded queue, as in .NET's ConcurrentQueueSegment): each
/// slot carries a sequence number. Slot <c>i % capacity</c> is free for the producer of position
/// <c>i</c> when its sequence equals <c>i</c>, and full for the consumer of position <c>i</c> when
/// it equals <c>i + 1</c>. A consumer that has read position <c>i</c> sets the sequence to
/// <c>i + capacity</c>, which frees it for the producer one lap later.</para>
/// <para>Bulk: a producer reserves <c>n</c> consecutive positions with one CAS on the tail, after
/// checking against the head that they lie within one lap; a consumer reserves with one CAS on the
/// head, bounded by the tail. A reserved slot may still be finishing its previous occupant (a
/// consumer reserved it but has not yet copied the value out, or a producer reserved it but has
/// not yet published), so each slot's sequence is awaited with a short spin before it is touched.
/// Head and tail sit on their own cache lines.</para>
/// </remarks>
public sealed unsafe class PtrRing : IDisposable
{
    private readonly Slot* _slots;
    private readonly long _mask;
    private PaddedCounters _pos;
    private int _disposed;

    /// <summary>Creates a ring that holds at least <paramref name="size"/> values (rounded up to a power of two).</summary>
    public PtrRing(int size)
    {
        if (size < 1 || size > (1 << 24))
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "Ring size must be in 1..16777216.");
        }

        int cap = (int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(size, 2));
        Capacity = cap;
        _mask = cap - 1;
        _slots = (Slot*)NativeMemory.AlignedAlloc((nuint)(cap * sizeof(Slot)), 64);
        for (long i = 0; i < cap; i++)
        {
            _slots[i].Seq = i;
            _slots[i].Value = 0;
        }
    }

    /// <summary>How many values the ring can hold.</summary>
    public int Capacity { get; }

    /// <summary>Approximate number of values in the ring (exact when quiescent).</summary>
    public int Count
    {
        get
        {
            long t = Volatile.Read(ref _pos.Tail);
            long h = Volatile.Read(ref _pos.Head);
            return (int)Math.Clamp(t - h, 0, Capacity);
        }
    }

    public bool IsEmpty => Count == 0;

    /// <summary>Values ever enqueued (positions reserved by producers), for counters derived from the ring.</summary>
    public long TotalEnqueued => Volatile.Read(ref _pos.Tail);

    /// <summary>Adds one value. False when the ring is full.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueue(nuint value)
    {
        long pos = Reserve(ref _pos.Tail, 1, producer: true);
        if (pos < 0)
        {
            return false;
        }

        Publish(pos, value);
        return true;
    }

    /// <summary>Removes one value. False when the ring is empty.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue(out nuint value)
    {
        long pos = Reserve(ref _pos.Head, 1, producer: false);
        if (pos < 0)
        {
            value = 0;
            return false;
        }

        value = Take(pos);
        return true;
    }

    /// <summary>
    /// Adds as many of <paramref name="values"/> as fit, in order, as one reservation.
    /// Returns how many were added (DPDK's burst semantics).
    /// </summary>
    public int EnqueueBurst(ReadOnlySpan<nuint> values)
    {
        if (values.IsEmpty)
        {
            return 0;
        }

        long start = ReserveUpTo(ref _pos.Tail, values.Length, producer: true, out int n);
        for (int i = 0; i < n; i++)
        {
            Publish(start + i, values[i]);
        }

        return n;
    }

    /// <summary>Adds all of <paramref name="values"/> or none (DPDK's bulk semantics).</summary>
    public bool EnqueueBulk(ReadOnlySpan<nuint> values)
    {
        if (values.Length > Capacity)
        {
            return false;
        }

        long start = Reserve(ref _pos.Tail, values.Length, producer: true);
        if (start < 0)
        {
            return false;
        }

        for (int i = 0; i < values.Length; i++)
        {
            Publish(start + i, values[i]);
        }

        return true;
    }

    /// <summary>Removes up to <paramref name="dest"/>.Length values as one reservation. Returns how many.</summary>
    public int DequeueBurst(Span<nuint> dest)
    {
        if (dest.IsEmpty)
        {
            return 0;
        }

        long start = ReserveUpTo(ref _pos.Head, dest.Length, producer: false, out int n);
        for (int i = 0; i < n; i++)
        {
            dest[i] = Take(start + i);
        }

        return n;
    }

    /// <summary>Removes exactly <paramref name="dest"/>.Length values, or none.</summary>
    public bool DequeueBulk(Span<nuint> dest)
    {
        long start = Reserve(ref _pos.Head, dest.Length, producer: false);
        if (start < 0)
        {
            return false;
        }

        for (int i = 0; i < dest.Length; i++)
        {
            dest[i] = Take(start + i);
        }

        return true;
    }

    /// <summary>Reserves exactly <paramref name="n"/> positions; -1 when they are not available.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long Reserve(ref long counter, int n, bool producer)
    {
        while (true)
        {
            long mine = Volatile.Read(ref counter);
            long avail = Available(mine, producer);
            if (avail < n)
            {
                return -1;
            }

            if (Interlocked.CompareExchange(ref counter, mine + n, mine) == mine)
            {
                return mine;
            }
        }
    }

    private long ReserveUpTo(ref long counter, int want, bool producer, out int n)
    {
        while (true)
        {
            long mine = Volatile.Read(ref counter);
            long avail = Available(mine, producer);
            if (avail <= 0)
            {
                n = 0;
                return mine;
            }

            int take = (int)Math.Min(avail, want);
            if (Interlocked.CompareExchange(ref counter, mine + take, mine) == mine)
            {
                n = take;
                return mine;
            }
        }
    }

    /// <summary>Positions free for a producer whose tail is <paramref name="mine"/>, or filled for a consumer whose head is <paramref name="mine"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long Available(long mine, bool producer) =>
        producer
            ? Capacity - (mine - Volatile.Read(ref _pos.Head))
            : Volatile.Read(ref _pos.Tail) - mine;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Publish(long pos, nuint value)
    {
        Slot* s = _slots + (pos & _mask);
        if (Volatile.Read(ref s->Seq) != pos)
        {
            WaitFor(s, pos);
        }

        s->Value = value;
        Volatile.Write(ref s->Seq, pos + 1);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nuint Take(long pos)
    {
        Slot* s = _slots + (pos & _mask);
        if (Volatile.Read(ref s->Seq) != pos + 1)
        {
            WaitFor(s, pos + 1);
        }

        nuint v = s->Value;
        Volatile.Write(ref s->Seq, pos + Capacity);
        return v;
    }

    /// <summary>The slot is still finishing its previous occupant: a peer reserved it and is mid-copy.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void WaitFor(Slot* s, long seq)
    {
        SpinWait spin = default;
        while (Volatile.Read(ref s->Seq) != seq)
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            NativeMemory.AlignedFree(_slots);
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct Slot
    {
        public long Seq;
        public nuint Value;
    }

    /// <summary>Head and tail on separate cache lines so producers and consumers do not false-share.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 192)]
    private struct PaddedCounters
    {
        [FieldOffset(64)] public long Head;
        [FieldOffset(128)] public long Tail;
    }
}
