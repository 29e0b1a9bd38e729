using Netmem.Net;

namespace Netmem.Drivers.Common;

/// <summary>
/// One rx queue's memory, what <see cref="IQueueManagementOps.MemAlloc"/> creates: a header pool
/// (readable system pages, without <see cref="PagePoolFlags.AllowUnreadableNetmem"/>), a payload
/// pool (with the flag, so it takes the queue's provider) and an rx descriptor ring filled from
/// the payload pool in bulk. After the poll loop adopts it, only that loop touches it.
/// </summary>
/// <remarks>
/// A driver whose queue needs more than pools and a descriptor ring (an AF_XDP queue's UMEM)
/// derives from it, allocates the rest in its own constructor and frees it in
/// <see cref="Free"/>: the queue management ops and the poll loop handle it as any queue memory.
/// <para>Only the drivers in Netmem.Drivers create or derive from it (the constructor is
/// <c>private protected</c>); a user reads a running queue's pools through the driver's
/// <c>QueueMemory(queue)</c>.</para>
/// </remarks>
public class QueueMemory
{
    private readonly NetmemRef[] _ring;
    private int _head;
    private int _count;

    /// <summary>
    /// Allocates queue <paramref name="queueIndex"/>'s pools as <paramref name="options"/> describe
    /// and posts its rx descriptors. <see cref="QueueMemoryOptions.PayloadAllowsUnreadable"/>
    /// false is a driver that cannot take unreadable memory: binding a provider then fails the
    /// core's page-pool check.
    /// </summary>
    private protected QueueMemory(NetDevice device, int queueIndex, QueueMemoryOptions options)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentNullException.ThrowIfNull(options);
        RxQueue rxq = device.RxQueues[queueIndex];
        HeaderDataSplit = device.TcpDataSplit == TcpDataSplit.Enabled;

        // Without header-data split the whole frame lands in one header-pool buffer.
        int headerOrder = 0;
        while (!HeaderDataSplit && (4096 << headerOrder) < options.MaxFrame && headerOrder < PageArena.MaxOrder)
        {
            headerOrder++;
        }

        string prefix = $"{device.Name}-q{queueIndex}";
        HeaderPool = new PagePool(new PagePoolParams
        {
            Name = prefix + "-hdr",
            Role = PagePoolRole.Header,
            Napi = rxq.Napi,
            Queue = rxq,
            Ifindex = device.Ifindex,
            Order = headerOrder,
            PoolSize = options.PoolSize,
            Flags = PagePoolFlags.DmaMap,
            Arena = options.Arena,
        });
        try
        {
            PayloadPool = new PagePool(new PagePoolParams
            {
                Name = prefix + "-payload",
                Role = PagePoolRole.Payload,
                Napi = rxq.Napi,
                Queue = rxq,
                Ifindex = device.Ifindex,
                PoolSize = options.PoolSize,
                Flags = PagePoolFlags.DmaMap | (options.PayloadAllowsUnreadable ? PagePoolFlags.AllowUnreadableNetmem : PagePoolFlags.None),
                Arena = options.Arena,
            });
        }
        catch
        {
            HeaderPool.Dispose();
            throw;
        }

        _ring = new NetmemRef[options.RxRingSize];
        Refill();
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
    internal static QueueMemory Allocate(NetDevice device, int queueIndex, QueueMemoryOptions options) => new(device, queueIndex, options);

    /// <summary>
    /// Allocates a queue's memory. <paramref name="payloadAllowsUnreadable"/> false is a driver
    /// that cannot take unreadable memory: binding a provider then fails the core's page-pool check.
    /// </summary>
    internal static QueueMemory Allocate(NetDevice device, int queueIndex, int ringSize, int poolSize, bool payloadAllowsUnreadable, int maxFrame, PageArena? arena) =>
        new(device, queueIndex, new QueueMemoryOptions(ringSize, poolSize, payloadAllowsUnreadable, maxFrame, arena));

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

    /// <summary>
    /// Returns posted descriptors and destroys both pools (they linger while sockets hold
    /// netmems). A driver that allocated more overrides, gives back what it posted elsewhere
    /// first, calls this, then frees the rest.
    /// </summary>
    public virtual void Free()
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
