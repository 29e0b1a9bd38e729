namespace Netmem.Devmem;

/// <summary>
/// A region mapped into a <see cref="DmaDevice"/>'s IOVA space (the kernel's
/// <c>dma_buf_map_attachment</c> result): its scatter-gather list. Holds a reference on the
/// region until <see cref="DmaDevice.Unmap"/>.
/// </summary>
public sealed class DmaMapping
{
    private int _mapped = 1;

    internal DmaMapping(DmaDevice device, DmabufRegion region, DmaSegment[] segments)
    {
        Device = device;
        Region = region;
        Segments = segments;
    }

    /// <summary>The device whose IOVA space holds the mapping.</summary>
    public DmaDevice Device { get; }

    /// <summary>The mapped region.</summary>
    public DmabufRegion Region { get; }

    /// <summary>The scatter-gather list, in region order; together the segments cover the region.</summary>
    public IReadOnlyList<DmaSegment> Segments { get; }

    /// <summary>True until <see cref="DmaDevice.Unmap"/>.</summary>
    public bool IsMapped => Volatile.Read(ref _mapped) != 0;

    /// <summary>Marks the mapping gone; true for the one caller that did it.</summary>
    internal bool MarkUnmapped() => Interlocked.Exchange(ref _mapped, 0) != 0;

    /// <summary>Names the region, the device and the number of IOVA segments, for logs.</summary>
    public override string ToString() => $"dma mapping of {Region} on {Device} ({Segments.Count} segments)";
}
