namespace Netmem.Devmem;

/// <summary>
/// One entry of a mapping's scatter-gather list: <paramref name="Length"/> bytes of the region
/// starting at <paramref name="RegionOffset"/>, seen by the device at <paramref name="DmaAddress"/>.
/// </summary>
/// <param name="DmaAddress">The IOVA the device uses for the first byte.</param>
/// <param name="Length">Bytes in the segment: a non-zero multiple of 4 KiB.</param>
/// <param name="RegionOffset">Offset of the first byte inside the region.</param>
public readonly record struct DmaSegment(ulong DmaAddress, long Length, long RegionOffset)
{
    /// <summary>The first IOVA past the segment.</summary>
    public ulong DmaEnd => DmaAddress + (ulong)Length;
}
