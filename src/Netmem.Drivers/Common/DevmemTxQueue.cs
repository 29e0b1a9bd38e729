using System.Globalization;
using Netmem.Devmem;
using Netmem.Diagnostics;
using Netmem.Native;
using Netmem.Net;

namespace Netmem.Drivers.Common;

/// <summary>
/// A device's transmit queue for devmem sends, shared by the drivers: the bounded ring that
/// <see cref="INetmemTxOps.Transmit"/> fills (the kernel's tx descriptor ring behind
/// <c>ndo_start_xmit</c>) and the thread that drains it, hands each packet to the driver's
/// <see cref="Xmit"/> and ends it (the tx completion of the NAPI poll).
/// </summary>
/// <remarks>
/// <para>Every accepted packet ends exactly once: completed when the driver says the device read
/// it, cancelled when it did not go out or when the queue stops with it still queued. The
/// counters add up: <see cref="Accepted"/> = <see cref="Completed"/> + <see cref="Cancelled"/> +
/// <see cref="Queued"/> + the driver's pending ones.</para>
/// <para>No exception escapes the thread: one thrown by <see cref="Xmit"/> cancels that packet,
/// is counted in <see cref="Faults"/> and traced, and the queue goes on. Packets are ended outside
/// the queue lock, so a socket's lock (held while it calls <see cref="Transmit"/>) and this one
/// are never taken in the other order. Nothing is allocated per packet.</para>
/// </remarks>
internal abstract class DevmemTxQueue : INetmemTxOps, IDisposable
{
    private readonly Lock _lock = new();
    private readonly DevmemTxPacket[] _ring;
    private readonly DevmemTxPacket[] _batch;
    private readonly ManualResetEventSlim _work = new(false);
    private readonly Thread _thread;
    private int _head;
    private int _count;
    private volatile bool _stopped;

    private long _accepted;
    private long _completed;
    private long _copied;
    private long _cancelled;
    private long _bytes;
    private long _faults;

    /// <param name="device">The device whose queue this is (for traces).</param>
    /// <param name="index">The tx queue index.</param>
    /// <param name="capacity">Packets the ring holds; a send past it gets ENOBUFS.</param>
    protected DevmemTxQueue(NetDevice device, int index, int capacity)
    {
        ArgumentNullException.ThrowIfNull(device);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        Device = device;
        Index = index;
        _ring = new DevmemTxPacket[capacity];
        _batch = new DevmemTxPacket[Math.Min(capacity, 64)];
        _thread = new Thread(Loop) { IsBackground = true, Name = $"{device.Name}-tx{index}" };
        _thread.Start();
    }

    /// <summary>The device the queue belongs to.</summary>
    public NetDevice Device { get; }

    /// <summary>The tx queue index.</summary>
    public int Index { get; }

    /// <summary>Packets accepted by <see cref="Transmit"/>.</summary>
    public long Accepted => Interlocked.Read(ref _accepted);

    /// <summary>Packets completed (the device read them).</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Of <see cref="Completed"/>, those the driver copied first.</summary>
    public long Copied => Interlocked.Read(ref _copied);

    /// <summary>Packets cancelled (dropped by the driver, faulted, or still queued at stop).</summary>
    public long Cancelled => Interlocked.Read(ref _cancelled);

    /// <summary>Payload bytes of the completed packets.</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    /// <summary>Exceptions thrown by <see cref="Xmit"/> and caught.</summary>
    public long Faults => Interlocked.Read(ref _faults);

    /// <summary>Packets in the ring now.</summary>
    public int Queued
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>A consistent-enough snapshot of the counters (each read atomically).</summary>
    public TxQueueStats Stats
    {
        get
        {
            long accepted = Accepted;
            long completed = Completed;
            long cancelled = Cancelled;
            int queued = Queued;
            return new TxQueueStats(accepted, completed, Copied, cancelled, Bytes, Faults, queued, Math.Max(0, accepted - completed - cancelled - queued));
        }
    }

    /// <summary>The largest UDP payload the device sends in one frame, for an IPv4 or IPv6 datagram.</summary>
    protected abstract int MaxPayload(bool ipv6);

    /// <inheritdoc/>
    public int Transmit(NetDevice device, in DevmemTxPacket packet)
    {
        if (packet.PayloadLength > MaxPayload(packet.Route.IsIPv6))
        {
            return Errno.EMSGSIZE;
        }

        lock (_lock)
        {
            if (_stopped)
            {
                return Errno.ENETDOWN;
            }

            if (_count == _ring.Length)
            {
                return Errno.ENOBUFS;
            }

            _ring[(_head + _count) % _ring.Length] = packet;
            _count++;
        }

        Interlocked.Increment(ref _accepted);
        if (!_work.IsSet)
        {
            _work.Set();
        }

        return 0;
    }

    /// <summary>Stops accepting, lets the thread finish the packet in hand, and cancels what is still queued.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_stopped)
            {
                return;
            }

            _stopped = true;
        }

        _work.Set();
        _thread.Join();
        while (TakeBatch() is int n and > 0)
        {
            for (int i = 0; i < n; i++)
            {
                End(in _batch[i], TxOutcome.Dropped);
                _batch[i] = default;
            }
        }

        OnStopped();
    }

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Device.Name} tx queue {Index}");

    /// <summary>
    /// Sends <paramref name="packet"/> (on the queue's thread): builds its headers, lets the
    /// device read the payload at the fragments' DMA addresses, puts the frame on the wire, and
    /// says how it went. It may throw; the packet is then cancelled.
    /// </summary>
    protected internal abstract TxOutcome Xmit(in DevmemTxPacket packet);

    /// <summary>Called on the queue's thread after each batch, e.g. to flush or reap completions.</summary>
    protected virtual void AfterBatch()
    {
    }

    /// <summary>Called once after the queue stopped and cancelled what it held.</summary>
    protected virtual void OnStopped()
    {
    }

    /// <summary>Ends a packet a driver kept (<see cref="TxOutcome.Pending"/>), counting it.</summary>
    protected void EndPending(in DevmemTxPacket packet, TxOutcome outcome) => End(in packet, outcome);

    private int TakeBatch()
    {
        lock (_lock)
        {
            int n = Math.Min(_count, _batch.Length);
            for (int i = 0; i < n; i++)
            {
                _batch[i] = _ring[_head];
                _ring[_head] = default;
                _head = (_head + 1) % _ring.Length;
            }

            _count -= n;
            if (_count == 0 && !_stopped)
            {
                _work.Reset();
            }

            return n;
        }
    }

    private void Loop()
    {
        long faults = 0;
        while (!_stopped)
        {
            int n = TakeBatch();
            if (n == 0)
            {
                _work.Wait(50);
                SafeAfterBatch(ref faults);
                continue;
            }

            for (int i = 0; i < n; i++)
            {
                TxOutcome outcome;
                try
                {
                    outcome = Xmit(in _batch[i]);
                }
                catch (Exception e)
                {
                    outcome = TxOutcome.Dropped;
                    Fault(e, ref faults);
                }

                if (outcome != TxOutcome.Pending)
                {
                    End(in _batch[i], outcome);
                }

                _batch[i] = default;
            }

            SafeAfterBatch(ref faults);
        }
    }

    private void SafeAfterBatch(ref long faults)
    {
        try
        {
            AfterBatch();
        }
        catch (Exception e)
        {
            Fault(e, ref faults);
        }
    }

    private void Fault(Exception e, ref long faults)
    {
        faults = Interlocked.Increment(ref _faults);
        try
        {
            NetmemEventSource.Log.NapiPollCaught(Device, Index, faults, e);
        }
        catch
        {
            // Tracing must not take the queue down.
        }
    }

    private void End(in DevmemTxPacket packet, TxOutcome outcome)
    {
        try
        {
            switch (outcome)
            {
                case TxOutcome.Sent:
                    packet.Complete();
                    Interlocked.Increment(ref _completed);
                    Interlocked.Add(ref _bytes, packet.PayloadLength);
                    break;
                case TxOutcome.SentCopied:
                    packet.Complete(ZeroCopyCode.Copied);
                    Interlocked.Increment(ref _completed);
                    Interlocked.Increment(ref _copied);
                    Interlocked.Add(ref _bytes, packet.PayloadLength);
                    break;
                default:
                    packet.Cancel();
                    Interlocked.Increment(ref _cancelled);
                    break;
            }
        }
        catch (Exception e)
        {
            long faults = 0;
            Fault(e, ref faults);
        }
    }
}
