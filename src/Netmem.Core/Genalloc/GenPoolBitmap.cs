using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Netmem.Genalloc;

/// <summary>The search path actually taken, once <see cref="GenPoolSearch.Auto"/> is resolved.</summary>
internal enum BitmapPath : byte
{
    Scalar,
    Vector256,
    Vector512,
}

/// <summary>
/// Bitmap primitives for <see cref="GenPool"/>: searches for runs of zero bits and the atomic
/// set and clear of runs (the kernel's <c>bitmap_find_next_zero_area_off</c>,
/// <c>bitmap_set_ll</c> and <c>bitmap_clear_ll</c>).
/// </summary>
/// <remarks>
/// A bitmap is a span of <see cref="ulong"/> words, bit <c>i</c> in word <c>i / 64</c> at
/// position <c>i % 64</c>; a set bit is an allocated granule. Bits past the chunk's last granule
/// in the last word are kept set, so a search for a set bit always stops at the chunk's end.
/// Searches read words without synchronisation: a result may be stale by the time it is used,
/// which is why the caller claims the run with <see cref="SetRun"/> and retries on failure.
/// Every search path visits the same words and returns the same index; the vector paths only
/// skip runs of uniform words (all ones when looking for a zero, all zeros when looking for a
/// one) several words at a step.
/// </remarks>
internal static class GenPoolBitmap
{
    /// <summary>Returns the first clear bit in [<paramref name="start"/>, <paramref name="end"/>), or <paramref name="end"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int FindNextZeroBit(ReadOnlySpan<ulong> map, int start, int end, BitmapPath path)
    {
        if (start >= end)
        {
            return end;
        }

        ref ulong m = ref MemoryMarshal.GetReference(map);
        int w = start >> 6;
        ulong word = ~Unsafe.Add(ref m, w) & (ulong.MaxValue << (start & 63));
        if (word == 0)
        {
            return FindNextZeroBitSlow(ref m, w + 1, end, path);
        }

        int bit = (w << 6) + BitOperations.TrailingZeroCount(word);
        return bit < end ? bit : end;
    }

    /// <summary>Returns the first set bit in [<paramref name="start"/>, <paramref name="end"/>), or <paramref name="end"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static int FindNextSetBit(ReadOnlySpan<ulong> map, int start, int end, BitmapPath path)
    {
        if (start >= end)
        {
            return end;
        }

        ref ulong m = ref MemoryMarshal.GetReference(map);
        int w = start >> 6;
        ulong word = Unsafe.Add(ref m, w) & (ulong.MaxValue << (start & 63));
        if (word == 0)
        {
            return FindNextSetBitSlow(ref m, w + 1, end, path);
        }

        int bit = (w << 6) + BitOperations.TrailingZeroCount(word);
        return bit < end ? bit : end;
    }

    private static int FindNextZeroBitSlow(ref ulong m, int w, int end, BitmapPath path)
    {
        int wordEnd = (int)(((uint)end + 63) >> 6);
        w = SkipUniformWords(ref m, w, wordEnd, ulong.MaxValue, path);
        if (w >= wordEnd)
        {
            return end;
        }

        int bit = (w << 6) + BitOperations.TrailingZeroCount(~Unsafe.Add(ref m, w));
        return bit < end ? bit : end;
    }

    private static int FindNextSetBitSlow(ref ulong m, int w, int end, BitmapPath path)
    {
        int wordEnd = (int)(((uint)end + 63) >> 6);
        w = SkipUniformWords(ref m, w, wordEnd, 0, path);
        if (w >= wordEnd)
        {
            return end;
        }

        int bit = (w << 6) + BitOperations.TrailingZeroCount(Unsafe.Add(ref m, w));
        return bit < end ? bit : end;
    }

    /// <summary>
    /// Returns the first word index in [<paramref name="w"/>, <paramref name="wordEnd"/>) whose
    /// value is not <paramref name="pattern"/> (all ones or all zeros), or <paramref name="wordEnd"/>.
    /// </summary>
    /// <remarks>
    /// The vector paths test two vectors per step: for all-ones, their AND must be all ones; for
    /// all-zeros, their OR must be zero. The step that fails is rescanned one word at a time, so
    /// the index found is the scalar path's.
    /// </remarks>
    internal static int SkipUniformWords(ref ulong m, int w, int wordEnd, ulong pattern, BitmapPath path)
    {
        Debug.Assert(pattern is 0 or ulong.MaxValue);
        if (path == BitmapPath.Vector512)
        {
            w = SkipUniformWords512(ref m, w, wordEnd, pattern);
        }
        else if (path == BitmapPath.Vector256)
        {
            w = SkipUniformWords256(ref m, w, wordEnd, pattern);
        }

        while (w < wordEnd && Unsafe.Add(ref m, w) == pattern)
        {
            w++;
        }

        return w;
    }

    private static int SkipUniformWords512(ref ulong m, int w, int wordEnd, ulong pattern)
    {
        const int Step = 2 * 8;
        if (pattern == ulong.MaxValue)
        {
            while (w + Step <= wordEnd)
            {
                Vector512<ulong> a = Vector512.LoadUnsafe(ref m, (nuint)w);
                Vector512<ulong> b = Vector512.LoadUnsafe(ref m, (nuint)(w + 8));
                if (!Vector512.EqualsAll(a & b, Vector512<ulong>.AllBitsSet))
                {
                    break;
                }

                w += Step;
            }
        }
        else
        {
            while (w + Step <= wordEnd)
            {
                Vector512<ulong> a = Vector512.LoadUnsafe(ref m, (nuint)w);
                Vector512<ulong> b = Vector512.LoadUnsafe(ref m, (nuint)(w + 8));
                if (!Vector512.EqualsAll(a | b, Vector512<ulong>.Zero))
                {
                    break;
                }

                w += Step;
            }
        }

        return w;
    }

    private static int SkipUniformWords256(ref ulong m, int w, int wordEnd, ulong pattern)
    {
        const int Step = 2 * 4;
        if (pattern == ulong.MaxValue)
        {
            while (w + Step <= wordEnd)
            {
                Vector256<ulong> a = Vector256.LoadUnsafe(ref m, (nuint)w);
                Vector256<ulong> b = Vector256.LoadUnsafe(ref m, (nuint)(w + 4));
                if (!Vector256.EqualsAll(a & b, Vector256<ulong>.AllBitsSet))
                {
                    break;
                }

                w += Step;
            }
        }
        else
        {
            while (w + Step <= wordEnd)
            {
                Vector256<ulong> a = Vector256.LoadUnsafe(ref m, (nuint)w);
                Vector256<ulong> b = Vector256.LoadUnsafe(ref m, (nuint)(w + 4));
                if (!Vector256.EqualsAll(a | b, Vector256<ulong>.Zero))
                {
                    break;
                }

                w += Step;
            }
        }

        return w;
    }

    /// <summary>
    /// Returns the first index <c>i &gt;= start</c> such that bits [i, i + nr) are clear,
    /// <c>i + nr &lt;= limit</c>, and <c>(i + alignOffset) &amp; alignMask == 0</c>; or -1.
    /// The kernel's <c>bitmap_find_next_zero_area_off</c>.
    /// </summary>
    internal static int FindZeroArea(ReadOnlySpan<ulong> map, int start, int limit, int nr, int alignMask, int alignOffset, BitmapPath path)
    {
        Debug.Assert(nr > 0);
        while (true)
        {
            int index = FindNextZeroBit(map, start, limit, path);
            if (alignMask != 0)
            {
                long aligned = ((index + (long)alignOffset + alignMask) & ~(long)alignMask) - alignOffset;
                if (aligned + nr > limit)
                {
                    return -1;
                }

                index = (int)aligned;
            }

            long runEnd = (long)index + nr;
            if (runEnd > limit)
            {
                return -1;
            }

            int set = FindNextSetBit(map, index, (int)runEnd, path);
            if (set >= runEnd)
            {
                return index;
            }

            start = set + 1;
        }
    }

    /// <summary>
    /// Returns the start of the smallest run of at least <paramref name="nr"/> clear bits in
    /// [0, <paramref name="nbits"/>) and its length in <paramref name="holeLength"/>, or -1.
    /// Ties go to the lowest index; an exact fit ends the scan. The kernel's <c>gen_pool_best_fit</c>.
    /// </summary>
    internal static int FindBestFit(ReadOnlySpan<ulong> map, int nbits, int nr, BitmapPath path, out int holeLength)
    {
        int best = -1;
        int bestLength = int.MaxValue;
        int index = FindZeroArea(map, 0, nbits, nr, 0, 0, path);
        while (index >= 0)
        {
            int holeEnd = FindNextSetBit(map, index + nr, nbits, path);
            int length = holeEnd - index;
            if (length < bestLength)
            {
                best = index;
                bestLength = length;
                if (length == nr)
                {
                    break;
                }
            }

            index = FindZeroArea(map, holeEnd, nbits, nr, 0, 0, path);
        }

        holeLength = best >= 0 ? bestLength : 0;
        return best;
    }

    /// <summary>
    /// Atomically sets bits [start, start + nr), one word at a time, each word only if none of
    /// its bits in the run is set yet. Returns the number of bits not set: 0 on success; on
    /// failure, the first <c>nr - result</c> bits of the run were set by this call and the
    /// caller must clear them (<see cref="ClearRun"/>). The kernel's <c>bitmap_set_ll</c>.
    /// </summary>
    internal static int SetRun(Span<ulong> map, int start, int nr)
    {
        ref ulong m = ref MemoryMarshal.GetReference(map);
        int w = start >> 6;
        int bit = start & 63;
        int remaining = nr;
        while (remaining > 0)
        {
            int count = Math.Min(64 - bit, remaining);
            ulong mask = WordMask(bit, count);
            ref ulong word = ref Unsafe.Add(ref m, w);
            ulong old = Volatile.Read(ref word);
            while (true)
            {
                if ((old & mask) != 0)
                {
                    return remaining;
                }

                ulong seen = Interlocked.CompareExchange(ref word, old | mask, old);
                if (seen == old)
                {
                    break;
                }

                old = seen;
            }

            remaining -= count;
            bit = 0;
            w++;
        }

        return 0;
    }

    /// <summary>
    /// Atomically clears bits [start, start + nr), one word at a time, each word only if all of
    /// its bits in the run are set. Returns the number of bits not cleared: 0 on success; on
    /// failure the first <c>nr - result</c> bits were cleared by this call. The kernel's
    /// <c>bitmap_clear_ll</c>.
    /// </summary>
    internal static int ClearRun(Span<ulong> map, int start, int nr)
    {
        ref ulong m = ref MemoryMarshal.GetReference(map);
        int w = start >> 6;
        int bit = start & 63;
        int remaining = nr;
        while (remaining > 0)
        {
            int count = Math.Min(64 - bit, remaining);
            ulong mask = WordMask(bit, count);
            ref ulong word = ref Unsafe.Add(ref m, w);
            ulong old = Volatile.Read(ref word);
            while (true)
            {
                if ((old & mask) != mask)
                {
                    return remaining;
                }

                ulong seen = Interlocked.CompareExchange(ref word, old & ~mask, old);
                if (seen == old)
                {
                    break;
                }

                old = seen;
            }

            remaining -= count;
            bit = 0;
            w++;
        }

        return 0;
    }

    /// <summary>
    /// Unconditionally and atomically sets bits [start, start + nr): puts back what a failed
    /// <see cref="ClearRun"/> cleared.
    /// </summary>
    internal static void RestoreRun(Span<ulong> map, int start, int nr)
    {
        ref ulong m = ref MemoryMarshal.GetReference(map);
        int w = start >> 6;
        int bit = start & 63;
        int remaining = nr;
        while (remaining > 0)
        {
            int count = Math.Min(64 - bit, remaining);
            Interlocked.Or(ref Unsafe.Add(ref m, w), WordMask(bit, count));
            remaining -= count;
            bit = 0;
            w++;
        }
    }

    /// <summary>Whether every bit in [start, start + nr) is set, read without synchronisation.</summary>
    internal static bool IsRunSet(ReadOnlySpan<ulong> map, int start, int nr)
    {
        ref ulong m = ref MemoryMarshal.GetReference(map);
        int w = start >> 6;
        int bit = start & 63;
        int remaining = nr;
        while (remaining > 0)
        {
            int count = Math.Min(64 - bit, remaining);
            ulong mask = WordMask(bit, count);
            if ((Volatile.Read(ref Unsafe.Add(ref m, w)) & mask) != mask)
            {
                return false;
            }

            remaining -= count;
            bit = 0;
            w++;
        }

        return true;
    }

    /// <summary>A mask of <paramref name="count"/> (1..64) bits starting at <paramref name="bit"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong WordMask(int bit, int count)
    {
        Debug.Assert(count is > 0 and <= 64 && bit + count <= 64);
        return (ulong.MaxValue >> (64 - count)) << bit;
    }
}
