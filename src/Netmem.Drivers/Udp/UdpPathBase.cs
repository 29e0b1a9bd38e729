namespace Netmem.Drivers.Udp;

/// <summary>
/// One way of taking datagrams from the socket into pool buffers. Every method runs inside the
/// receiver's consumer section (one thread at a time), except <see cref="Wake"/>.
/// </summary>
internal abstract class UdpPathBase : IDisposable
{
    /// <summary>Which path this is.</summary>
    public abstract UdpReceivePath Kind { get; }

    /// <summary>Payload bytes one buffer can take.</summary>
    public abstract int BufferCapacity { get; }

    /// <summary>
    /// Fills <paramref name="dest"/> with up to <paramref name="limit"/> datagrams that are ready,
    /// without blocking, and keeps buffers posted to the kernel. Returns how many.
    /// </summary>
    public abstract int Poll(Span<UdpDatagram> dest, int limit);

    /// <summary>True when the kernel has buffers to receive into (false: the pool or region is exhausted).</summary>
    public abstract bool HasPostedBuffers { get; }

    /// <summary>Blocks until a datagram may be ready, <see cref="Wake"/> is called, or <paramref name="timeoutMs"/> passes (-1: no limit).</summary>
    public abstract void Wait(int timeoutMs);

    /// <summary>Interrupts a <see cref="Wait"/> from any thread.</summary>
    public abstract void Wake();

    /// <summary>Stops the kernel from using the buffers and gives every posted buffer back to the pool.</summary>
    public abstract void Shutdown();

    public abstract void Dispose();
}
