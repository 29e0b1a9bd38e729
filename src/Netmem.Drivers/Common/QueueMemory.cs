using Netmem.Net;

namespace Netmem.Drivers.Common;

/// <summary>
/// One rx queue's memory, what <see cref="IQueueManagementOps.MemAlloc"/> creates: a header pool
/// (readable system pages, without <see cref="PagePoolFlags.AllowUnreadableNetmem"/>), a payload
/// pool (with the flag, so it takes the queue's provider) and an rx descriptor ring filled from
/// the payload pool in bulk. After the poll loop adopts it, only that loop touches it.
/// </summary>
public sealed class QueueMemory
{
    private readonly NetmemRef[] _ring;
    private int _head;
    private int _count;

    private QueueMemory(PagePool header, PagePool payload, int ringSize, bool headerDataSplit)
    {
        HeaderPool = header;
        PayloadPool = payload;
        HeaderDataSplit = headerDataSplit;
        _ring = new NetmemRef[ringSize];
    }

    /// <summary>The header pool: readable system pages that receive each frame's headers (and, with header-data split off, the whole frame).</summary>
    public PagePool HeaderPool { get; }

    /// <summary>The payload pool: it takes the queue's memory provider, so with a bound region its netmems are <c>net_iov</c>s of that region; otherwise system pages.</summary>
    public PagePool PayloadPool { get; }

    /// <summary>Header-data split as configured when this memory was allocated.</summary>
    public bool HeaderDataSplit { get; }

    /// <summary>Rx descriptors posted.</summary>
    public int Posted => _count;

    /// <summary>The datagram the poll loop is assembling on this memory (see <see cref="RxPacketInHand"/>).</summary>
    internal RxPacketInHand InHand { get; } = new();

    /// <summary>
    /// Test hook: called by the poll loop with a datagram's fragments in hand, just before they
    /// are handed to the socket. A test throws from it to check that a fault in a receive step
    /// is caught, counted and traced, and leaks nothing. Null (the only production value) costs
    /// one load per datagram.
    /// </summary>
    internal Action? FaultInjection { get; set; }

    /// <summary>Allocates queue <paramref name="queueIndex"/>'s memory as <paramref name="options"/> describe.</summary>
    internal static QueueMemory Allocate(NetDevice device, int queueIndex, QueueMemoryOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Allocate(device, queueIndex, options.RxRingSize, options.PoolSize, options.PayloadAllowsUnreadable, options.MaxFrame, options.Arena);
    }

    /// <summary>
    /// Allocates a queue's memory. <paramref name="payloadAllowsUnreadable"/> false is a driver
    /// that cannot take unreadable memory: binding a provider then fails the core's page-pool check.
    /// </summary>
    internal static QueueMemory Allocate(NetDevice device, int queueIndex, int ringSize, int poolSize, bool payloadAllowsUnreadable, int maxFrame, PageArena? arena)
    {
        ArgumentNullException.ThrowIfNull(device);
        RxQueue rxq = device.RxQueues[queueIndex];
        bool hds = device.TcpDataSplit == TcpDataSplit.Enabled;

        // Without header-data split the whole frame lands in one header-pool buffer.
        int headerOrder = 0;
        while (!hds && (4096 << headerOrder) < maxFrame && headerOrder < PageArena.MaxOrder)
        {
            headerOrder++;
        }

        string prefix = $"{device.Name}-q{queueIndex}";
        var header = new PagePool(new PagePoolParams
        {
            Name = prefix + "-hdr",
            Role = PagePoolRole.Header,
            Napi = rxq.Napi,
            Queue = rxq,
            Ifindex = device.Ifindex,
            Order = headerOrder,
            PoolSize = poolSize,
            Flags = PagePoolFlags.DmaMap,
            Arena = arena,
        });
        PagePool payload;
        try
        {
            payload = new PagePool(new PagePoolParams
            {
                Name = prefix + "-payload",
                Role = PagePoolRole.Payload,
                Napi = rxq.Napi,
                Queue = rxq,
                Ifindex = device.Ifindex,
                PoolSize = poolSize,
                Flags = PagePoolFlags.DmaMap | (payloadAllowsUnreadable ? PagePoolFlags.AllowUnreadableNetmem : PagePoolFlags.None),
                Arena = arena,
            });
        }
        catch
        {
            header.Dispose();
            throw;
        }

        var mem = new QueueMemory(header, payload, ringSize, hds);
        mem.Refill();
        return mem;
    }

    /// <summary>Takes the next posted rx descriptor, refilling the ring when it runs low. Null when memory is exhausted.</summary>
    internal NetmemRef TakeRxDescriptor()
    {
        if (_count == 0)
        {
            Refill();
            if (_count == 0)
            {
                return NetmemRef.Null;
            }
        }

        NetmemRef d = _ring[_head];
        _ring[_head] = NetmemRef.Null;
        _head = (_head + 1) % _ring.Length;
        _count--;
        if (_count < _ring.Length / 4)
        {
            Refill();
        }

        return d;
    }

    /// <summary>Puts back a descriptor taken with <see cref="TakeRxDescriptor"/> and not used; it is next again.</summary>
    internal void ReturnRxDescriptor(NetmemRef descriptor)
    {
        if (descriptor.IsNull)
        {
            return;
        }

        if (_count == _ring.Length)
        {
            PayloadPool.RecycleDirect(descriptor);
            return;
        }

        _head = (_head - 1 + _ring.Length) % _ring.Length;
        _ring[_head] = descriptor;
        _count++;
    }

    /// <summary>Posts descriptors from the payload pool in bulk until the ring is full.</summary>
    internal void Refill()
    {
        while (_count < _ring.Length)
        {
            int tail = (_head + _count) % _ring.Length;
            int contiguous = Math.Min(_ring.Length - _count, _ring.Length - tail);
            int got = PayloadPool.AllocBulk(_ring.AsSpan(tail, contiguous));
            _count += got;
            if (got < contiguous)
            {
                return;
            }
        }
    }

    /// <summary>Returns posted descriptors and destroys both pools (they linger while sockets hold netmems).</summary>
    internal void Free()
    {
        while (_count > 0)
        {
            PayloadPool.PutFullNetmem(_ring[_head], allowDirect: false);
            _ring[_head] = NetmemRef.Null;
            _head = (_head + 1) % _ring.Length;
            _count--;
        }

        HeaderPool.Dispose();
        PayloadPool.Dispose();
    }
}
