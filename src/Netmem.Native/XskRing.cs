using System.Runtime.CompilerServices;

namespace Netmem.Native;

/// <summary>
/// One AF_XDP ring mapped from the kernel: a power-of-two array of descriptors with a producer
/// and a consumer index, each written by one side only.
/// </summary>
/// <remarks>
/// <para>The protocol is the one of <c>net/xdp/xsk_queue.h</c>: the producer writes descriptors,
/// then publishes its index with a release store; the consumer reads the producer index with an
/// acquire load, reads the descriptors, then publishes its own index with a release store, which
/// hands the slots back. Indices run freely and are masked on use. Each side keeps a cached copy
/// of the other's index and rereads it only when the cache says the ring is full (producer) or
/// empty (consumer), so a burst costs one shared-cache-line read.</para>
/// <para>Not thread-safe: one user-space thread owns each ring (the queue's poll loop).</para>
/// </remarks>
internal sealed unsafe class XskRing
{
    private readonly uint* _producer;
    private readonly uint* _consumer;
    private readonly uint* _flags;
    private readonly byte* _descs;
    private readonly uint _mask;

    /// <summary>This side's copy of the producer index.</summary>
    private uint _cachedProducer;

    /// <summary>This side's copy of the consumer index.</summary>
    private uint _cachedConsumer;

    internal XskRing(byte* map, in XdpRingOffset off, uint size, bool userProduces)
    {
        _producer = (uint*)(map + off.Producer);
        _consumer = (uint*)(map + off.Consumer);
        _flags = (uint*)(map + off.Flags);
        _descs = map + off.Desc;
        Size = size;
        _mask = size - 1;
        _cachedProducer = Volatile.Read(ref *_producer);
        _cachedConsumer = Volatile.Read(ref *_consumer);
        UserProduces = userProduces;
    }

    /// <summary>Entries in the ring (a power of two).</summary>
    public uint Size { get; }

    /// <summary>True for the fill and tx rings (user space produces), false for rx and completion.</summary>
    public bool UserProduces { get; }

    /// <summary>Whether the kernel asks for a wakeup (<c>XDP_RING_NEED_WAKEUP</c>) before it looks at this ring again.</summary>
    public bool NeedsWakeup => (Volatile.Read(ref *_flags) & 1) != 0;

    /// <summary>Entries the producer published and the consumer has not released (a fresh read of both indices).</summary>
    public uint Outstanding => Volatile.Read(ref *_producer) - Volatile.Read(ref *_consumer);

    // ---- producer side (fill and tx rings) ----

    /// <summary>How many slots the producer may write now, at most <paramref name="wanted"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint FreeSlots(uint wanted)
    {
        uint free = Size - (_cachedProducer - _cachedConsumer);
        if (free >= wanted)
        {
            return wanted;
        }

        _cachedConsumer = Volatile.Read(ref *_consumer);
        free = Size - (_cachedProducer - _cachedConsumer);
        return Math.Min(free, wanted);
    }

    /// <summary>Writes address <paramref name="addr"/> at producer slot <paramref name="i"/> past the cached producer index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteAddress(uint i, ulong addr) => ((ulong*)_descs)[(_cachedProducer + i) & _mask] = addr;

    /// <summary>Writes a tx descriptor at producer slot <paramref name="i"/> past the cached producer index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WriteDescriptor(uint i, ulong addr, uint length, uint options)
    {
        XdpDesc* d = (XdpDesc*)_descs + ((_cachedProducer + i) & _mask);
        *d = new XdpDesc(addr, length, options);
    }

    /// <summary>Publishes <paramref name="count"/> written slots to the kernel (release store).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Submit(uint count)
    {
        _cachedProducer += count;
        Volatile.Write(ref *_producer, _cachedProducer);
    }

    // ---- consumer side (rx and completion rings) ----

    /// <summary>How many entries the consumer may read now, at most <paramref name="wanted"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Available(uint wanted)
    {
        uint ready = _cachedProducer - _cachedConsumer;
        if (ready == 0)
        {
            _cachedProducer = Volatile.Read(ref *_producer);
            ready = _cachedProducer - _cachedConsumer;
        }

        return Math.Min(ready, wanted);
    }

    /// <summary>The rx descriptor at consumer slot <paramref name="i"/> past the cached consumer index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref readonly XdpDesc RxDescriptor(uint i) => ref ((XdpDesc*)_descs)[(_cachedConsumer + i) & _mask];

    /// <summary>The address at consumer slot <paramref name="i"/> of a completion ring.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ulong ReadAddress(uint i) => ((ulong*)_descs)[(_cachedConsumer + i) & _mask];

    /// <summary>Hands <paramref name="count"/> read entries back to the kernel (release store).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Release(uint count)
    {
        _cachedConsumer += count;
        Volatile.Write(ref *_consumer, _cachedConsumer);
    }
}

/// <summary><c>struct xdp_desc</c>: a frame's address in the UMEM, its length, options.</summary>
internal readonly struct XdpDesc
{
    /// <summary><c>XDP_PKT_CONTD</c>: the frame goes on in the next descriptor (multi-buffer).</summary>
    public const uint PacketContinues = 1;

    public XdpDesc(ulong address, uint length, uint options)
    {
        Address = address;
        Length = length;
        Options = options;
    }

    /// <summary>The frame's first byte, as an offset in the UMEM.</summary>
    public readonly ulong Address;

    /// <summary>The frame's length.</summary>
    public readonly uint Length;

    /// <summary>Options (<c>XDP_PKT_CONTD</c> for multi-buffer frames).</summary>
    public readonly uint Options;
}

/// <summary><c>struct xdp_ring_offset</c>: where a ring's parts sit in its mapping (filled by getsockopt).</summary>
internal readonly struct XdpRingOffset
{
#pragma warning disable CS0649 // Written by the kernel through getsockopt(XDP_MMAP_OFFSETS).
    public readonly ulong Producer;
    public readonly ulong Consumer;
    public readonly ulong Desc;
    public readonly ulong Flags;
#pragma warning restore CS0649
}
