using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Netmem.Rings;

/// <summary>
/// A bounded, lock-free, multi-producer multi-consumer ring of pointer-sized values, with bulk
/// enqueue and dequeue. The page pool's return path for pages freed away from the consumer.
/// </summary>
/// <remarks>
/// <para>Slot protocol (Vyukov's bounded queue, as in .NET's <c>ConcurrentQueueSegment</c>): each
/// slot carries a sequence number. Slot <c>p % capacity</c> is free for the producer of position
/// <c>p</c> when its sequence equals <c>p</c>, and published for the consumer of position <c>p</c>
/// when it equals <c>p + 1</c>. A consumer that has copied position <c>p</c> out sets the sequence
/// to <c>p + capacity</c>, which frees the slot for the producer one lap later. The sequences are
/// set up this way by the constructor.</para>
/// <para>Reservation looks at the slots, never at the other side's index: a producer reserves
/// positions <c>[t, t + n)</c> after seeing those slots free, with one CAS on the tail; a consumer
/// reserves <c>[h, h + n)</c> after seeing those slots published, with one CAS on the head. So a
/// consumer only ever takes slots whose value is already there, and a producer only slots whose
/// old value is already gone: neither side ever waits for the other, and a failed CAS means a peer
/// on the same side made progress.</para>
/// <para>What a stalled thread holds back: a producer preempted between its reservation and its
/// publication leaves its slot unpublished. A consumer sees that slot as the end of the ring: it
/// takes the values published before it and returns (it does not spin), and the values other
/// producers published behind it are taken once the stalled producer publishes. Likewise a
/// consumer preempted between its reservation and copying out makes that one slot look full to
/// producers a lap later. <see cref="Count"/> counts reserved positions, so it may include slots
/// not yet published.</para>
/// <para>Head and tail sit on their own cache lines; producers touch the tail and the slots,
/// consumers the head and the slots.</para>
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

        // At least 2: a slot's "free for the next lap" sequence (p + capacity) must differ from
        // its "published" sequence (p + 1).
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

    /// <summary>Approximate number of values in the ring: positions reserved by producers and not yet by consumers (exact when quiescent).</summary>
    public int Count
    {
        get
        {
            long h = Volatile.Read(ref _pos.Head);
            long t = Volatile.Read(ref _pos.Tail);
            return (int)Math.Clamp(t - h, 0, Capacity);
        }
    }

    /// <summary>True when <see cref="Count"/> is zero.</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>Values ever enqueued (positions reserved by producers), for counters derived from the ring.</summary>
    public long TotalEnqueued => Volatile.Read(ref _pos.Tail);

    /// <summary>Adds one value. False when the ring is full.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnqueue(nuint value)
    {
        long pos = ReserveForEnqueue(1, exact: true, out _);
        if (pos < 0)
        {
            return false;
        }

        Publish(pos, value);
        return true;
    }

    /// <summary>Removes one value. False when the ring is empty or its next value is not published yet.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryDequeue(out nuint value)
    {
        long pos = Reserve(ref _pos.Head, Published, 1, exact: true, out _);
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

        long start = ReserveForEnqueue(values.Length, exact: false, out int n);
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

        if (values.IsEmpty)
        {
            return true;
        }

        long start = ReserveForEnqueue(values.Length, exact: true, out _);
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

    /// <summary>
    /// Removes up to <paramref name="dest"/>.Length published values as one reservation, stopping
    /// at the first slot not yet published. Returns how many.
    /// </summary>
    public int DequeueBurst(Span<nuint> dest)
    {
        if (dest.IsEmpty)
        {
            return 0;
        }

        long start = Reserve(ref _pos.Head, Published, Math.Min(dest.Length, Capacity), exact: false, out int n);
        for (int i = 0; i < n; i++)
        {
            dest[i] = Take(start + i);
        }

        return n;
    }

    /// <summary>Removes exactly <paramref name="dest"/>.Length values, or none.</summary>
    public bool DequeueBulk(Span<nuint> dest)
    {
        if (dest.Length > Capacity)
        {
            return false;
        }

        if (dest.IsEmpty)
        {
            return true;
        }

        long start = Reserve(ref _pos.Head, Published, dest.Length, exact: true, out _);
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

    /// <summary>A slot's sequence minus its position: 0 when free for its producer.</summary>
    private const long Free = 0;

    /// <summary>A slot's sequence minus its position: 1 when published for its consumer.</summary>
    private const long Published = 1;

    /// <summary>
    /// Reserves up to <paramref name="want"/> free positions for a producer; the caller must
    /// <see cref="Publish"/> each. Internal so a test can stall a producer between the two steps.
    /// Returns the first position and the count in <paramref name="n"/>, or -1 (n = 0) when none
    /// (or, with <paramref name="exact"/>, fewer than <paramref name="want"/>) are free.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal long ReserveForEnqueue(int want, bool exact, out int n) =>
        Reserve(ref _pos.Tail, Free, want, exact, out n);

    /// <summary>
    /// Reserves a run of consecutive positions from <paramref name="index"/> (tail or head) whose
    /// slots are all in the <paramref name="ready"/> state for this lap: free for a producer,
    /// published for a consumer. One CAS moves the index past the run. A slot whose sequence is
    /// behind the position is not ready (ring full or empty there); one ahead of it means a peer
    /// moved the index since we read it, so we read it again.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long Reserve(ref long index, long ready, int want, bool exact, out int n)
    {
        while (true)
        {
            long start = Volatile.Read(ref index);
            int k = 0;
            long diff = 0;
            while (k < want)
            {
                long pos = start + k;
                diff = Volatile.Read(ref _slots[pos & _mask].Seq) - (pos + ready);
                if (diff != 0)
                {
                    break;
                }

                k++;
            }

            if (k == 0 || (exact && k < want))
            {
                if (diff < 0)
                {
                    // Not ready: the ring is full (producer) or empty up to an unpublished slot
                    // (consumer). Neither side waits for the other.
                    n = 0;
                    return -1;
                }

                // A sequence ahead of its position: a peer moved the index past it.
                continue;
            }

            if (Interlocked.CompareExchange(ref index, start + k, start) == start)
            {
                n = k;
                return start;
            }
        }
    }

    /// <summary>Writes a reserved position's value and publishes it to consumers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Publish(long pos, nuint value)
    {
        Slot* s = _slots + (pos & _mask);
        s->Value = value;

        // Release: a consumer that sees the sequence sees the value.
        Volatile.Write(ref s->Seq, pos + Published);
    }

    /// <summary>Copies a reserved position's value out and frees the slot for the next lap.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nuint Take(long pos)
    {
        Slot* s = _slots + (pos & _mask);
        nuint v = s->Value;

        // Release: the value is read before a producer of the next lap may overwrite it.
        Volatile.Write(ref s->Seq, pos + Capacity);
        return v;
    }

    /// <summary>Frees the slots. The ring must no longer be in use.</summary>
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
