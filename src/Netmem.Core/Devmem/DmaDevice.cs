using System.Globalization;
using System.Runtime.CompilerServices;
using Netmem.Native;

namespace Netmem.Devmem;

/// <summary>
/// A device's view of memory: an IOVA space into which regions are mapped, and the device's own
/// accesses (<see cref="DmaWrite"/>, <see cref="DmaRead"/>) that a driver makes when it plays the
/// hardware.
/// </summary>
/// <remarks>
/// <para>IOVAs are handed out by a bump allocator from <see cref="IovaBase"/>, 4 KiB aligned, and
/// are never reused: a 64-bit space does not run out, and a stale address then faults instead of
/// landing in a newer mapping. Each segment is followed by an unmapped 4 KiB guard, so an access
/// that runs past a segment faults as it would behind an IOMMU.</para>
/// <para>Concurrency: <see cref="Map"/> and <see cref="Unmap"/> serialise on a lock and publish an
/// immutable, address-sorted table; device accesses read the table without a lock and hold a
/// reference on the region for the duration of the copy, so an <see cref="Unmap"/> racing a write
/// cannot free the memory under it.</para>
/// </remarks>
public sealed unsafe class DmaDevice
{
    /// <summary>The default first IOVA: 4 GiB, so no DMA address is 0 or looks like a small integer.</summary>
    public const ulong DefaultIovaBase = 0x1_0000_0000;

    private const ulong IovaAlign = NetmemDesc.BasePageSize;

    /// <summary>One mapped segment in the device's table.</summary>
    private readonly record struct Entry(ulong Start, ulong End, long RegionOffset, DmaMapping Mapping);

    /// <summary>Serialises <see cref="Map"/> and <see cref="Unmap"/>; device accesses never take it.</summary>
    private readonly Lock _lock = new();

    /// <summary>Mapped segments sorted by IOVA; replaced whole under <see cref="_lock"/>.</summary>
    private Entry[] _table = [];

    /// <summary>The next free IOVA (bump pointer).</summary>
    private ulong _nextIova;

    /// <summary>Creates a device with an empty IOVA space starting at <paramref name="iovaBase"/>.</summary>
    /// <param name="name">A name for messages.</param>
    /// <param name="iovaBase">The first IOVA: non-zero and 4 KiB aligned.</param>
    public DmaDevice(string name = "dma-device", ulong iovaBase = DefaultIovaBase)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (iovaBase == 0 || iovaBase % IovaAlign != 0)
        {
            throw new ArgumentException($"IOVA base 0x{iovaBase:x} must be non-zero and 4 KiB aligned", nameof(iovaBase));
        }

        Name = name;
        IovaBase = iovaBase;
        _nextIova = iovaBase;
    }

    /// <summary>The device's name, as given to the constructor (for logs and introspection).</summary>
    public string Name { get; }

    /// <summary>The first IOVA this device hands out.</summary>
    public ulong IovaBase { get; }

    /// <summary>The number of mapped segments now.</summary>
    public int SegmentCount => Volatile.Read(ref _table).Length;

    /// <summary>
    /// Maps <paramref name="region"/> into the IOVA space and returns its scatter-gather list: one
    /// segment, or segments of at most <paramref name="maxSegmentSize"/> bytes when it is set (as
    /// an IOMMU-less device with a segment limit sees a buffer). The mapping holds a reference on
    /// the region until <see cref="Unmap"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSegmentSize"/> is negative or not a multiple of 4 KiB.</exception>
    /// <exception cref="ObjectDisposedException">The region was already released.</exception>
    public DmaMapping Map(DmabufRegion region, int maxSegmentSize = 0)
    {
        ArgumentNullException.ThrowIfNull(region);
        if (maxSegmentSize < 0 || maxSegmentSize % NetmemDesc.BasePageSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxSegmentSize), maxSegmentSize,
                "the maximum segment size must be 0 (no limit) or a positive multiple of 4 KiB");
        }

        if (region.IsDisposed || !region.TryAcquire())
        {
            throw new ObjectDisposedException(region.ToString(), $"cannot map {region} into {this}: it was disposed.");
        }

        long segSize = maxSegmentSize == 0 ? region.Size : maxSegmentSize;
        int count = (int)((region.Size + segSize - 1) / segSize);
        var segments = new DmaSegment[count];
        lock (_lock)
        {
            var mapping = new DmaMapping(this, region, segments);
            Entry[] old = _table;
            var table = new Entry[old.Length + count];
            old.CopyTo(table, 0);
            long offset = 0;
            for (int i = 0; i < count; i++)
            {
                long len = Math.Min(segSize, region.Size - offset);
                ulong iova = _nextIova;
                _nextIova = iova + (ulong)len + IovaAlign; // guard gap after each segment
                segments[i] = new DmaSegment(iova, len, offset);
                table[old.Length + i] = new Entry(iova, iova + (ulong)len, offset, mapping);
                offset += len;
            }

            // Bump allocation only grows, so appending keeps the table sorted by IOVA.
            Volatile.Write(ref _table, table);
            return mapping;
        }
    }

    /// <summary>Removes <paramref name="mapping"/> from the IOVA space and drops its region reference.</summary>
    /// <exception cref="ArgumentException">The mapping belongs to another device.</exception>
    /// <exception cref="InvalidOperationException">The mapping was already unmapped.</exception>
    public void Unmap(DmaMapping mapping)
    {
        ArgumentNullException.ThrowIfNull(mapping);
        if (!ReferenceEquals(mapping.Device, this))
        {
            throw new ArgumentException($"{mapping} belongs to {mapping.Device}, not to {this}", nameof(mapping));
        }

        lock (_lock)
        {
            if (!mapping.MarkUnmapped())
            {
                throw new InvalidOperationException($"{mapping} was already unmapped.");
            }

            Volatile.Write(ref _table, Array.FindAll(_table, e => !ReferenceEquals(e.Mapping, mapping)));
        }

        mapping.Region.Release();
    }

    /// <summary>
    /// The device writes <paramref name="data"/> at <paramref name="dmaAddress"/>: the bytes land
    /// in the region mapped there, device-only regions included. A driver calls this where real
    /// hardware would DMA a received packet.
    /// </summary>
    /// <exception cref="NetmemException">EFAULT: the range is not inside one mapped segment.</exception>
    public void DmaWrite(ulong dmaAddress, ReadOnlySpan<byte> data)
    {
        DmabufRegion region = Translate(dmaAddress, data.Length, "write", out long offset);
        try
        {
            data.CopyTo(new Span<byte>(region.DeviceAddress(offset), data.Length));
        }
        finally
        {
            region.Release();
        }
    }

    /// <summary>The device reads <paramref name="dest"/>.Length bytes at <paramref name="dmaAddress"/> (a transmit).</summary>
    /// <exception cref="NetmemException">EFAULT: the range is not inside one mapped segment.</exception>
    public void DmaRead(ulong dmaAddress, Span<byte> dest)
    {
        DmabufRegion region = Translate(dmaAddress, dest.Length, "read", out long offset);
        try
        {
            new ReadOnlySpan<byte>(region.DeviceAddress(offset), dest.Length).CopyTo(dest);
        }
        finally
        {
            region.Release();
        }
    }

    /// <summary>
    /// The device's own address for [<paramref name="dmaAddress"/>, +<paramref name="length"/>), for
    /// a driver that lets an I/O source (a TUN read) write straight into device memory, or an I/O
    /// sink (a TUN write) read straight from it, as the NIC's DMA engine would. The region stays
    /// referenced until the caller releases <paramref name="region"/>. Never hand the address out
    /// as readable memory.
    /// </summary>
    /// <param name="dmaAddress">The first byte's DMA address.</param>
    /// <param name="length">Bytes the device will access.</param>
    /// <param name="region">The region mapped there, referenced: release it after the access.</param>
    /// <param name="read">True when the device reads (a transmit): a fault then says "read".</param>
    /// <exception cref="NetmemException">EFAULT: the range is not inside one mapped segment.</exception>
    internal byte* AcquireDeviceAddress(ulong dmaAddress, int length, out DmabufRegion region, bool read = false)
    {
        region = Translate(dmaAddress, length, read ? "read" : "write", out long offset);
        return region.DeviceAddress(offset);
    }

    /// <summary>Names the device for logs: <c>dma device 'name'</c>.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"dma device '{Name}'");

    /// <summary>
    /// Finds the segment holding [<paramref name="iova"/>, +<paramref name="length"/>) and takes a
    /// reference on its region; the caller releases it.
    /// </summary>
    private DmabufRegion Translate(ulong iova, int length, string access, out long regionOffset)
    {
        Entry[] table = Volatile.Read(ref _table);
        int lo = 0;
        int hi = table.Length - 1;
        while (lo <= hi)
        {
            int mid = (int)((uint)(lo + hi) >> 1);
            ref readonly Entry e = ref table[mid];
            if (iova < e.Start)
            {
                hi = mid - 1;
            }
            else if (iova >= e.End)
            {
                lo = mid + 1;
            }
            else
            {
                if ((ulong)length > e.End - iova)
                {
                    throw Fault(iova, length, access, $"it runs past the end of its segment at 0x{e.End:x}");
                }

                DmabufRegion region = e.Mapping.Region;
                if (!region.TryAcquire())
                {
                    break;
                }

                if (!e.Mapping.IsMapped)
                {
                    region.Release();
                    break;
                }

                regionOffset = e.RegionOffset + (long)(iova - e.Start);
                return region;
            }
        }

        throw Fault(iova, length, access, "no mapping covers the address");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private NetmemException Fault(ulong iova, int length, string access, string why) =>
        new(Errno.EFAULT,
            string.Create(CultureInfo.InvariantCulture, $"{this}: DMA {access} of {length} bytes at 0x{iova:x} faulted: {why}"));
}
