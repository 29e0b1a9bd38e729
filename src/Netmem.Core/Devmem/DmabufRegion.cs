using System.Globalization;
using System.Runtime.CompilerServices;
using Netmem.Native;

namespace Netmem.Devmem;

/// <summary>
/// Memory to bind to rx queues: the stand-in for a dma-buf. Made from a memfd (shareable with
/// another process by its file descriptor, mapped readable), imported from a file descriptor, or
/// device-only (no CPU mapping a caller may use: unreadable).
/// </summary>
/// <remarks>
/// <para>Lifetime follows a dma-buf's: <see cref="Dispose"/> drops the creator's reference, and
/// every <see cref="DmaMapping"/> of the region holds another, so the memory (and the file
/// descriptor) is released only when the creator has disposed it and the last device mapping is
/// gone. After <see cref="Dispose"/> the CPU accessors throw <see cref="ObjectDisposedException"/>
/// even while a device still writes into the memory.</para>
/// <para>Device-only memory is an anonymous private mapping reachable only through
/// <see cref="DmaDevice.DmaWrite"/>; <see cref="GetSpan"/> and <see cref="ReadNetIov"/> refuse it.
/// A span handed out by <see cref="GetSpan"/> is valid only while the region is alive: the caller
/// must not keep it past <see cref="Dispose"/>.</para>
/// </remarks>
public sealed unsafe class DmabufRegion : IDisposable
{
    /// <summary>The granule of a region's size and of a <c>net_iov</c>: 4 KiB.</summary>
    public const int Granule = NetmemDesc.BasePageSize;

    /// <summary>Start of the mapping (CPU-readable or device-only).</summary>
    private readonly nint _base;

    /// <summary>The memfd or duplicated descriptor, -1 for device-only memory.</summary>
    private readonly int _fd;

    /// <summary>The creator's reference plus one per live <see cref="DmaMapping"/> and per in-flight DMA write.</summary>
    private int _refs = 1;

    /// <summary>Set by <see cref="Dispose"/>: the creator's reference is gone.</summary>
    private int _disposed;

    private DmabufRegion(string name, long size, nint mapping, int fd, bool cpuMapped)
    {
        Name = name;
        Size = size;
        _base = mapping;
        _fd = fd;
        IsCpuMapped = cpuMapped;
    }

    /// <summary>The name given at creation (the memfd name), for logs and introspection.</summary>
    public string Name { get; }

    /// <summary>Size in bytes: a non-zero multiple of 4 KiB.</summary>
    public long Size { get; }

    /// <summary>
    /// The file descriptor to share the memory with another process (pass it over a unix socket,
    /// or open <c>/proc/&lt;pid&gt;/fd/&lt;fd&gt;</c>); -1 for device-only memory. Owned by the
    /// region: closed when the region is released.
    /// </summary>
    public int Fd => _fd;

    /// <summary>True when the CPU may read and write the memory through <see cref="GetSpan"/>; false for device-only memory.</summary>
    public bool IsCpuMapped { get; }

    /// <summary>True once <see cref="Dispose"/> was called.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>
    /// Creates <paramref name="size"/> bytes of shared memory backed by a memfd named
    /// <paramref name="name"/>, mapped shared read/write.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="size"/> is not a positive multiple of 4 KiB.</exception>
    /// <exception cref="NativeException">memfd_create, ftruncate or mmap failed.</exception>
    public static DmabufRegion CreateMemfd(string name, long size)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        CheckSize(size, nameof(size));
        int fd = Sys.MemfdCreate(name, Sys.MFD_CLOEXEC);
        try
        {
            Sys.Ftruncate(fd, size);
            nint p = Sys.Mmap(0, (nuint)size, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED, fd, 0);
            return new DmabufRegion(name, size, p, fd, cpuMapped: true);
        }
        catch
        {
            Sys.Close(fd);
            throw;
        }
    }

    /// <summary>
    /// Imports memory another party created: duplicates <paramref name="fd"/> (the caller keeps
    /// its own descriptor) and maps it shared read/write. The size is the file's when
    /// <paramref name="size"/> is null; a given size may not exceed the file (touching a mapping
    /// past the end of its file would fault).
    /// </summary>
    /// <exception cref="ArgumentException">The size is not a positive multiple of 4 KiB, or exceeds the file.</exception>
    /// <exception cref="NativeException">dup, lseek or mmap failed (a descriptor not open read/write cannot be mapped).</exception>
    public static DmabufRegion Import(int fd, long? size = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(fd);
        int dup = Sys.Dup(fd);
        try
        {
            long fileSize = Sys.FileSize(dup);
            long len = size ?? fileSize;
            CheckSize(len, nameof(size));
            if (len > fileSize)
            {
                throw new ArgumentException(
                    $"cannot import {len} bytes from fd {fd}: the file holds only {fileSize} bytes", nameof(size));
            }

            nint p = Sys.Mmap(0, (nuint)len, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED, dup, 0);
            return new DmabufRegion("fd" + fd.ToString(CultureInfo.InvariantCulture), len, p, dup, cpuMapped: true);
        }
        catch
        {
            Sys.Close(dup);
            throw;
        }
    }

    /// <summary>
    /// Creates <paramref name="size"/> bytes of device-only memory: a device can write it through
    /// <see cref="DmaDevice.DmaWrite"/>, but the CPU cannot read it (<see cref="GetSpan"/> and
    /// <see cref="ReadNetIov"/> throw), as with a GPU buffer no one mapped.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="size"/> is not a positive multiple of 4 KiB.</exception>
    public static DmabufRegion CreateDeviceOnly(long size, string name = "device-only")
    {
        CheckSize(size, nameof(size));
        nint p = Sys.Mmap(0, (nuint)size, Sys.PROT_READ | Sys.PROT_WRITE,
            Sys.MAP_PRIVATE | Sys.MAP_ANONYMOUS | Sys.MAP_NORESERVE, -1, 0);
        return new DmabufRegion(name, size, p, -1, cpuMapped: false);
    }

    /// <summary>
    /// The bytes [<paramref name="offset"/>, <paramref name="offset"/> + <paramref name="length"/>)
    /// of a CPU-mapped region. Valid while the region is alive.
    /// </summary>
    /// <exception cref="InvalidOperationException">The region is device-only: its memory is unreadable.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the region.</exception>
    /// <exception cref="ObjectDisposedException">The region was disposed.</exception>
    public Span<byte> GetSpan(long offset, int length)
    {
        CheckCpuAccess();
        if (offset < 0 || length < 0 || offset > Size - length)
        {
            ThrowRange(offset, length);
        }

        return new Span<byte>((byte*)_base + offset, length);
    }

    /// <summary>
    /// The bytes of a <c>net_iov</c> of this region: [<paramref name="offsetInNetIov"/>,
    /// <paramref name="offsetInNetIov"/> + <paramref name="length"/>) inside its 4 KiB. This is
    /// the only way to a <c>net_iov</c>'s payload; pool code never reads it.
    /// </summary>
    /// <exception cref="InvalidOperationException"><paramref name="niov"/> is a page or null, or the region is device-only.</exception>
    /// <exception cref="ArgumentException"><paramref name="niov"/> belongs to a binding of another region.</exception>
    /// <exception cref="ArgumentOutOfRangeException">The range is not inside the <c>net_iov</c>.</exception>
    public Span<byte> ReadNetIov(NetmemRef niov, int offsetInNetIov, int length)
    {
        NetIovDesc* d = niov.NetIovDescriptor;
        CheckCpuAccess();
        if (offsetInNetIov < 0 || length < 0 || offsetInNetIov > Granule - length)
        {
            throw new ArgumentOutOfRangeException(nameof(length),
                $"[{offsetInNetIov}, {offsetInNetIov}+{length}) is not inside a {Granule}-byte net_iov");
        }

        DmabufBinding? owner = DmabufBinding.FromId(d->BindingId);
        if (owner is null || !ReferenceEquals(owner.Region, this))
        {
            throw new ArgumentException(
                $"{niov} is not memory of region '{Name}' (its binding {d->BindingId} is {(owner is null ? "gone" : "bound to region '" + owner.Region.Name + "'")})",
                nameof(niov));
        }

        return new Span<byte>((byte*)_base + (long)d->RegionOffset + offsetInNetIov, length);
    }

    /// <summary>Drops the creator's reference; the memory goes when the last device mapping is unmapped too.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Release();
        }
    }

    /// <summary>Names the region, its size in bytes and whether the CPU can map it, for logs.</summary>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"dmabuf region '{Name}' ({Size} bytes, {(IsCpuMapped ? "cpu-mapped, fd " + _fd : "device-only")})");

    /// <summary>Takes a reference unless the region is already released. For mappings and DMA writes.</summary>
    internal bool TryAcquire()
    {
        int r = Volatile.Read(ref _refs);
        while (r > 0)
        {
            int seen = Interlocked.CompareExchange(ref _refs, r + 1, r);
            if (seen == r)
            {
                return true;
            }

            r = seen;
        }

        return false;
    }

    /// <summary>Drops a reference; the last one unmaps the memory and closes the descriptor.</summary>
    internal void Release()
    {
        int r = Interlocked.Decrement(ref _refs);
        if (r > 0)
        {
            return;
        }

        if (r < 0)
        {
            throw new InvalidOperationException($"{this}: reference count dropped below zero.");
        }

        Sys.Munmap(_base, (nuint)Size);
        if (_fd >= 0)
        {
            Sys.Close(_fd);
        }
    }

    /// <summary>
    /// The device's way in: the address of <paramref name="offset"/> in the mapping, device-only
    /// memory included. The caller MUST hold a reference (<see cref="TryAcquire"/>) while it uses it.
    /// </summary>
    internal byte* DeviceAddress(long offset) => (byte*)_base + offset;

    private void CheckCpuAccess()
    {
        if (!IsCpuMapped)
        {
            ThrowDeviceOnly();
        }

        if (Volatile.Read(ref _disposed) != 0)
        {
            ThrowDisposed();
        }
    }

    private static void CheckSize(long size, string paramName)
    {
        if (size <= 0 || size % Granule != 0)
        {
            throw new ArgumentException($"region size {size} must be a positive multiple of {Granule} bytes (4 KiB)", paramName);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDeviceOnly() =>
        throw new InvalidOperationException($"{this} is device-only: its memory is unreadable by the CPU; only a DmaDevice can write it.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowDisposed() => throw new ObjectDisposedException(ToString(), $"{this} was disposed.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowRange(long offset, int length) =>
        throw new ArgumentOutOfRangeException(nameof(offset), $"[{offset}, {offset}+{length}) is not inside {this}");
}
