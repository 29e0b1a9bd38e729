namespace Netmem.Genalloc;

/// <summary>A snapshot of one chunk of a <see cref="GenPool"/>, as <see cref="GenPool.ForEachChunk"/> reports it.</summary>
/// <param name="StartAddr">The chunk's first address.</param>
/// <param name="EndAddr">The chunk's last address, inclusive (<c>StartAddr + Size - 1</c>), as the kernel's <c>end_addr</c>.</param>
/// <param name="PhysAddr">The physical (or DMA) address that <paramref name="StartAddr"/> maps to.</param>
/// <param name="Size">The chunk's size in bytes.</param>
/// <param name="Avail">The bytes not allocated at the moment of the snapshot.</param>
/// <param name="Owner">The object given to <see cref="GenPool.AddChunk(ulong, ulong, ulong, object?)"/>, handed back by allocations from this chunk.</param>
public readonly record struct GenPoolChunkInfo(
    ulong StartAddr,
    ulong EndAddr,
    ulong PhysAddr,
    ulong Size,
    ulong Avail,
    object? Owner);
