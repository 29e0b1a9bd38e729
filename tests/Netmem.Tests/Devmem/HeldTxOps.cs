using Netmem.Devmem;
using Netmem.Net;

namespace Netmem.Tests.Devmem;

/// <summary>
/// A driver's transmit entry that keeps every packet until the test ends it, so sends stay in
/// flight exactly as long as a test needs, and can be ended in any order.
/// </summary>
internal sealed class HeldTxOps : INetmemTxOps
{
    private readonly List<DevmemTxPacket> _held = [];
    private readonly HashSet<int> _ended = [];

    /// <summary>The errno <see cref="Transmit"/> returns instead of taking the packet; 0 takes it.</summary>
    public int Refuse { get; set; }

    public int Count
    {
        get
        {
            lock (_held)
            {
                return _held.Count;
            }
        }
    }

    public int Transmit(NetDevice device, in DevmemTxPacket packet)
    {
        if (Refuse != 0)
        {
            return Refuse;
        }

        lock (_held)
        {
            _held.Add(packet);
        }

        return 0;
    }

    /// <summary>The packet held at <paramref name="index"/> (in transmit order), ended or not.</summary>
    public DevmemTxPacket this[int index]
    {
        get
        {
            lock (_held)
            {
                return _held[index];
            }
        }
    }

    /// <summary>Completes the packet at <paramref name="index"/> and remembers that it ended.</summary>
    public void Complete(int index, ZeroCopyCode code = ZeroCopyCode.ZeroCopy)
    {
        this[index].Complete(code);
        MarkEnded(index);
    }

    /// <summary>Cancels the packet at <paramref name="index"/> and remembers that it ended.</summary>
    public void Cancel(int index)
    {
        this[index].Cancel();
        MarkEnded(index);
    }

    /// <summary>Completes every packet not ended yet, newest first (the worst order for the socket).</summary>
    public void CompleteAllNewestFirst(ZeroCopyCode code = ZeroCopyCode.ZeroCopy)
    {
        DevmemTxPacket[] open = TakeOpen();
        for (int i = open.Length - 1; i >= 0; i--)
        {
            open[i].Complete(code);
        }
    }

    /// <summary>Cancels every packet not ended yet, oldest first.</summary>
    public void CancelAll()
    {
        foreach (DevmemTxPacket p in TakeOpen())
        {
            p.Cancel();
        }
    }

    /// <summary>Marks every packet ended without ending it (the test ended them itself).</summary>
    public DevmemTxPacket[] TakeOpen()
    {
        lock (_held)
        {
            DevmemTxPacket[] open = [.. _held.Where((_, i) => !_ended.Contains(i))];
            for (int i = 0; i < _held.Count; i++)
            {
                _ended.Add(i);
            }

            return open;
        }
    }

    private void MarkEnded(int index)
    {
        lock (_held)
        {
            _ended.Add(index);
        }
    }
}
