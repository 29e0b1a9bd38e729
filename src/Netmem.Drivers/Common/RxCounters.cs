using Netmem.Drivers.Parsing;

namespace Netmem.Drivers.Common;

/// <summary>One rx queue's counters: written by its poll loop only, read by anyone.</summary>
public sealed class RxCounters
{
    private static readonly int ReasonCount = (int)Enum.GetValues<DropReason>().Max() + 1;
    private readonly long[] _drops = new long[ReasonCount];
    private long _packets;
    private long _bytes;
    private long _pollExceptions;

    /// <summary>Each queue's poll loop owns one; a user reads it through the driver's <c>QueueCounters</c>.</summary>
    internal RxCounters()
    {
    }

    /// <summary>Datagrams delivered to sockets.</summary>
    public long Packets => Volatile.Read(ref _packets);

    /// <summary>Payload bytes delivered to sockets.</summary>
    public long Bytes => Volatile.Read(ref _bytes);

    /// <summary>
    /// Unexpected exceptions the queue's poll loop caught and survived (each also traced through
    /// the EventSource). A frame in hand at the time is counted as a
    /// <see cref="DropReason.PollFault"/> drop as well. Should stay zero: any other value is a bug
    /// worth reporting.
    /// </summary>
    public long PollExceptions => Volatile.Read(ref _pollExceptions);

    /// <summary>Frames dropped, all reasons.</summary>
    public long Drops
    {
        get
        {
            long sum = 0;
            for (int i = 0; i < _drops.Length; i++)
            {
                sum += Volatile.Read(ref _drops[i]);
            }

            return sum;
        }
    }

    /// <summary>Frames dropped for <paramref name="reason"/> so far on this queue.</summary>
    public long DropsFor(DropReason reason) => Volatile.Read(ref _drops[(int)reason]);

    /// <summary>Non-zero drop counts by reason.</summary>
    public IReadOnlyDictionary<DropReason, long> DropsByReason()
    {
        Dictionary<DropReason, long> d = [];
        for (int i = 1; i < _drops.Length; i++)
        {
            long v = Volatile.Read(ref _drops[i]);
            if (v != 0)
            {
                d[(DropReason)i] = v;
            }
        }

        return d;
    }

    /// <summary>Non-zero drop counts by reason, summed over several queues.</summary>
    public static Dictionary<DropReason, long> SumDropsByReason(IEnumerable<RxCounters> queues)
    {
        ArgumentNullException.ThrowIfNull(queues);
        Dictionary<DropReason, long> d = [];
        foreach (RxCounters q in queues)
        {
            foreach ((DropReason reason, long count) in q.DropsByReason())
            {
                d[reason] = d.GetValueOrDefault(reason) + count;
            }
        }

        return d;
    }

    internal void Delivered(int payloadBytes)
    {
        Volatile.Write(ref _packets, _packets + 1);
        Volatile.Write(ref _bytes, _bytes + payloadBytes);
    }

    /// <summary>Counts one caught poll-loop exception and returns the new total (poll loop only).</summary>
    internal long PollException()
    {
        long n = _pollExceptions + 1;
        Volatile.Write(ref _pollExceptions, n);
        return n;
    }

    internal void Drop(DropReason reason) => Interlocked.Increment(ref _drops[(int)reason]);
}
