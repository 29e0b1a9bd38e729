using System.Runtime.CompilerServices;
using Netmem.Devmem;
using Netmem.Drivers.Common;
using Netmem.Native;

namespace Netmem.Drivers.Xdp;

/// <summary>
/// The transmit side of one bound XdpNic queue's AF_XDP socket: its tx and completion rings,
/// the UMEM chunks reserved for frame headers (or, without multi-buffer, whole frames), and the
/// FIFO of packets whose descriptors the kernel still has.
/// </summary>
/// <remarks>
/// <para>The reserved chunks are <c>net_iov</c>s the queue took from its payload pool when it
/// started and keeps off the fill ring, so the kernel never receives into them; a chunk's UMEM
/// address is its region offset. With multi-buffer each chunk holds
/// <see cref="XdpQueueMemory.ChunkSize"/> / <see cref="HeaderSlotSize"/> header slots (Ethernet +
/// IPv6 + UDP is 62 bytes); without it each chunk is one slot, a whole frame.</para>
/// <para>AF_XDP completes one socket's descriptors in the order they were posted, one
/// completion-ring entry per descriptor, so the FIFO needs no lookup: the packet at its head ends
/// when as many entries as it had descriptors have come back. Its first descriptor's address is
/// its slot's, which the reaper checks. The FIFO holds at most one packet per slot and is
/// allocated once: nothing per packet.</para>
/// <para>Everything here is done under <see cref="Lock"/>: by the tx queue's thread (post,
/// kick, reap) and by the rx queue's stop (drain, close), which never hold a socket's lock when
/// they take it.</para>
/// </remarks>
internal sealed unsafe class XdpTxPort
{
    /// <summary>Bytes of one header slot with multi-buffer: room for Ethernet + IPv6 + UDP.</summary>
    internal const int HeaderSlotSize = 64;

    private readonly ulong[] _slotAddress;
    private readonly int[] _freeSlots;
    private int _freeCount;

    private readonly DevmemTxPacket[] _packets;
    private readonly int[] _descsLeft;
    private readonly int[] _slotOf;
    private readonly bool[] _copied;
    private int _head;
    private int _count;

    internal XdpTxPort(XskSocket socket, DmabufRegion region, byte* umem, ReadOnlySpan<NetmemRef> chunks)
    {
        Socket = socket;
        Tx = socket.Tx!;
        Completion = socket.Completion;
        Region = region;
        Umem = umem;
        MultiBuffer = socket.MultiBuffer;
        SlotSize = MultiBuffer ? HeaderSlotSize : XdpQueueMemory.ChunkSize;
        int perChunk = XdpQueueMemory.ChunkSize / SlotSize;
        _slotAddress = new ulong[chunks.Length * perChunk];
        for (int c = 0; c < chunks.Length; c++)
        {
            for (int s = 0; s < perChunk; s++)
            {
                _slotAddress[(c * perChunk) + s] = chunks[c].RegionOffset + (ulong)(s * SlotSize);
            }
        }

        int slots = _slotAddress.Length;
        _freeSlots = new int[slots];
        for (int i = 0; i < slots; i++)
        {
            _freeSlots[i] = slots - 1 - i;
        }

        _freeCount = slots;
        _packets = new DevmemTxPacket[slots];
        _descsLeft = new int[slots];
        _slotOf = new int[slots];
        _copied = new bool[slots];
    }

    /// <summary>Taken for every use of the rings and the FIFO.</summary>
    internal Lock Lock { get; } = new();

    internal XskSocket Socket { get; }

    internal XskRing Tx { get; }

    internal XskRing Completion { get; }

    /// <summary>The UMEM's region: only payloads of a TX binding of this region can go out here.</summary>
    internal DmabufRegion Region { get; }

    /// <summary>The UMEM's first byte.</summary>
    internal byte* Umem { get; }

    /// <summary>Whether a frame goes out as header slot + payload chunks (<c>XDP_USE_SG</c>), or copied into one frame.</summary>
    internal bool MultiBuffer { get; }

    /// <summary>Bytes of one slot: a header slot, or a whole frame without multi-buffer.</summary>
    internal int SlotSize { get; }

    /// <summary>The UMEM address just past the highest slot.</summary>
    internal ulong SlotsEnd => _slotAddress.Max() + (ulong)SlotSize;

    /// <summary>Slots in all: the most packets in flight at once.</summary>
    internal int Slots => _slotAddress.Length;

    /// <summary>Packets posted whose descriptors have not all come back.</summary>
    internal int InFlight => _count;

    /// <summary>Set once the queue stopped: nothing is posted any more.</summary>
    internal bool Closed { get; private set; }

    /// <summary>Whether a slot is free and the tx ring takes <paramref name="descs"/> descriptors now.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool HasRoom(int descs) => _freeCount > 0 && Tx.FreeSlots((uint)descs) == (uint)descs;

    /// <summary>Takes a free slot; <see cref="HasRoom"/> said there is one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal int TakeSlot() => _freeSlots[--_freeCount];

    /// <summary>The UMEM address of slot <paramref name="slot"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ulong SlotAddress(int slot) => _slotAddress[slot];

    /// <summary>Records <paramref name="packet"/>, posted as <paramref name="descs"/> descriptors starting at slot <paramref name="slot"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Push(in DevmemTxPacket packet, int descs, int slot, bool copied)
    {
        int i = (_head + _count) % _packets.Length;
        _packets[i] = packet;
        _descsLeft[i] = descs;
        _slotOf[i] = slot;
        _copied[i] = copied;
        _count++;
    }

    /// <summary>
    /// Reads the completion ring and ends every packet whose descriptors are all back (through
    /// <paramref name="owner"/>), in order. Returns the packets ended.
    /// </summary>
    internal int Reap(XdpNicTxQueue owner)
    {
        int ended = 0;
        while (true)
        {
            uint n = Completion.Available(256);
            if (n == 0)
            {
                return ended;
            }

            for (uint k = 0; k < n; k++)
            {
                ulong address = Completion.ReadAddress(k);
                if (_count == 0)
                {
                    owner.CountStrayCompletion();
                    continue;
                }

                int i = _head;
                if (_descsLeft[i] == PostedDescs(i) && address != _slotAddress[_slotOf[i]])
                {
                    owner.CountStrayCompletion();
                }

                if (--_descsLeft[i] == 0)
                {
                    EndHead(owner, _copied[i] ? TxOutcome.SentCopied : TxOutcome.Sent);
                    ended++;
                }
            }

            Completion.Release(n);
        }
    }

    /// <summary>
    /// The queue stops: ends every packet still in flight as cancelled (the kernel did not give
    /// its descriptors back) and refuses further posts. Returns the packets cancelled.
    /// </summary>
    internal int Close(XdpNicTxQueue? owner)
    {
        Closed = true;
        int cancelled = 0;
        while (_count > 0)
        {
            if (owner is null)
            {
                throw new InvalidOperationException("packets in flight on an XdpNic queue without a transmit queue");
            }

            EndHead(owner, TxOutcome.Dropped);
            cancelled++;
        }

        return cancelled;
    }

    /// <summary>Descriptors the packet at FIFO index <paramref name="i"/> was posted as (for the first-address check).</summary>
    private int PostedDescs(int i) => _copied[i] || !MultiBuffer ? 1 : 1 + _packets[i].FragCount;

    private void EndHead(XdpNicTxQueue owner, TxOutcome outcome)
    {
        int i = _head;
        DevmemTxPacket packet = _packets[i];
        _packets[i] = default;
        _freeSlots[_freeCount++] = _slotOf[i];
        _head = (_head + 1) % _packets.Length;
        _count--;
        owner.EndFromPort(in packet, outcome);
    }
}
