using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Netmem.Genalloc;

/// <summary>
/// One address range of a <see cref="GenPool"/> and its allocation bitmap (the kernel's
/// <c>struct gen_pool_chunk</c>). Immutable but for the bitmap words, <see cref="Avail"/> and
/// <see cref="HintWord"/>, which any thread updates atomically.
/// </summary>
internal sealed class GenPoolChunk
{
    /// <summary>The first address of the range.</summary>
    internal readonly ulong StartAddr;

    /// <summary>The last address of the range, inclusive.</summary>
    internal readonly ulong EndAddr;

    /// <summary>The physical address <see cref="StartAddr"/> maps to.</summary>
    internal readonly ulong PhysAddr;

    /// <summary>The range's size in bytes.</summary>
    internal readonly ulong Size;

    /// <summary>The caller's object for the range, handed back by allocations from it.</summary>
    internal readonly object? Owner;

    /// <summary>One bit per granule, set when allocated; bits past <see cref="NBits"/> in the last word are set.</summary>
    internal readonly ulong[] Bits;

    /// <summary>The number of granules, i.e. of meaningful bits in <see cref="Bits"/>.</summary>
    internal readonly int NBits;

    /// <summary>Free bytes; changed only with <see cref="Interlocked.Add(ref long, long)"/> after the bitmap changed.</summary>
    internal long Avail;

    /// <summary>
    /// Next-fit hint: the word where the last first-fit allocation ended or the last free began.
    /// Racy on purpose: a stale hint only moves where a search starts, never what it may return.
    /// </summary>
    internal int HintWord;

    internal GenPoolChunk(ulong startAddr, ulong physAddr, ulong size, int nbits, object? owner)
    {
        StartAddr = startAddr;
        EndAddr = startAddr + (size - 1);
        PhysAddr = physAddr;
        Size = size;
        Owner = owner;
        NBits = nbits;
        Avail = (long)size;
        Bits = new ulong[(nbits + 63) >> 6];
        int tail = nbits & 63;
        if (tail != 0)
        {
            Bits[^1] = ulong.MaxValue << tail;
        }
    }

    /// <summary>Whether [addr, addr + size) lies inside this chunk; size 0 checks addr alone.</summary>
    internal bool Contains(ulong addr, ulong size)
    {
        if (addr < StartAddr || addr > EndAddr)
        {
            return false;
        }

        return size == 0 || size - 1 <= EndAddr - addr;
    }

    /// <summary>
    /// Finds and atomically claims <paramref name="nr"/> granules by first fit from the hint,
    /// wrapping around; returns the first granule's index, or -1 if no run fits.
    /// </summary>
    /// <remarks>
    /// Between the search and the claim another thread may take part of the run; then the part
    /// this call took is given back and the search starts over (the kernel's retry in
    /// <c>gen_pool_alloc_algo_owner</c>). Each retry follows another thread's successful claim,
    /// so the loop is lock-free.
    /// </remarks>
    internal int ClaimFirstFit(int nr, int alignMask, int order, bool useHint, BitmapPath path)
    {
        int alignOffset = (int)((StartAddr >> order) & (uint)alignMask);
        while (true)
        {
            int hintBit = useHint ? Volatile.Read(ref HintWord) << 6 : 0;
            int start = GenPoolBitmap.FindZeroArea(Bits, hintBit, NBits, nr, alignMask, alignOffset, path);
            if (start < 0 && hintBit > 0)
            {
                // Wrap: only runs that start before the hint are left to try.
                int limit = Math.Min(NBits, hintBit + nr - 1);
                start = GenPoolBitmap.FindZeroArea(Bits, 0, limit, nr, alignMask, alignOffset, path);
            }

            if (start < 0)
            {
                return -1;
            }

            if (TryClaim(start, nr))
            {
                if (useHint)
                {
                    UpdateHint((start + nr) >> 6);
                }

                return start;
            }
        }
    }

    /// <summary>
    /// Atomically sets granules [start, start + nr); if another thread holds any of them, gives
    /// back what this call set and returns false.
    /// </summary>
    internal bool TryClaim(int start, int nr)
    {
        int remain = GenPoolBitmap.SetRun(Bits, start, nr);
        if (remain == 0)
        {
            return true;
        }

        int notCleared = GenPoolBitmap.ClearRun(Bits, start, nr - remain);
        Debug.Assert(notCleared == 0, "bits this thread just set were cleared by another: a free of memory that was not allocated raced with an alloc");
        return false;
    }

    /// <summary>Moves the next-fit hint to <paramref name="word"/>, wrapping past the last word.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void UpdateHint(int word)
    {
        if (word >= Bits.Length)
        {
            word = 0;
        }

        // Read first: writing an unchanged hint would still take the cache line exclusive.
        if (Volatile.Read(ref HintWord) != word)
        {
            Volatile.Write(ref HintWord, word);
        }
    }
}
