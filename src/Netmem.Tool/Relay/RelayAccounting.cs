using Netmem.Drivers.Common;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Tool.Demo;

namespace Netmem.Tool.Relay;

/// <summary>
/// Where every generated datagram of a SimNic relay run went: received at the far end, or
/// counted as dropped by the relay's queue (0), by the relay itself (not relayable, send
/// refused, send cancelled) or by the far end's queue (1, which also counts frames the wire
/// lost to its full FIFO). Whatever is in none of these is in flight, or lost.
/// </summary>
internal sealed class RelayAccounting(SimNic nic, DevmemRelay relay, FlowConsumer farEnd)
{
    /// <summary>The relay.</summary>
    public DevmemRelay Relay { get; } = relay;

    /// <summary>The far end's verifier.</summary>
    public FlowConsumer FarEnd { get; } = farEnd;

    /// <summary>Datagrams counted as dropped anywhere.</summary>
    public long Dropped() =>
        nic.QueueCounters(0).Drops + nic.QueueCounters(1).Drops + Relay.Unrelayable + Relay.SendFailures + Relay.Cancelled;

    /// <summary>Datagrams received at the far end or counted as dropped.</summary>
    public long Accounted() => FarEnd.Received + Dropped();

    /// <summary>True when all <paramref name="generated"/> datagrams are accounted for.</summary>
    public bool Settled(long generated) => Accounted() >= generated;

    /// <summary>The drops by where and why (PascalCase keys; JSON makes them snake_case), only those that happened.</summary>
    public Dictionary<string, long> DropsByReason()
    {
        Dictionary<string, long> drops = [];
        for (int q = 0; q < 2; q++)
        {
            foreach ((DropReason reason, long count) in RxCounters.SumDropsByReason([nic.QueueCounters(q)]))
            {
                Add(drops, $"Queue{q}{reason}", count);
            }
        }

        Add(drops, "RelayUnrelayable", Relay.Unrelayable);
        Add(drops, "RelaySendRefused", Relay.SendFailures);
        Add(drops, "RelaySendCancelled", Relay.Cancelled);
        return drops;
    }

    private static void Add(Dictionary<string, long> drops, string key, long count)
    {
        if (count != 0)
        {
            drops[key] = count;
        }
    }
}
