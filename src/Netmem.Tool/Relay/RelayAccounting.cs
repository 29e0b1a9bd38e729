namespace Netmem.Tool.Relay;

/// <summary>
/// Where every generated datagram of a relay run went: received at the far end, or counted as
/// dropped by the device's queues (on SimNic also the far end's queue 1, which counts frames the
/// wire lost to its full FIFO) or by the relay itself (not relayable, send refused, send
/// cancelled). Whatever is in none of these is in flight, or lost.
/// </summary>
internal sealed class RelayAccounting(RelayRig rig, DevmemRelay relay)
{
    /// <summary>The relay.</summary>
    public DevmemRelay Relay { get; } = relay;

    /// <summary>The rig: its queues and its far end.</summary>
    public RelayRig Rig { get; } = rig;

    /// <summary>Datagrams counted as dropped anywhere.</summary>
    public long Dropped() =>
        Rig.QueueDrops() + Relay.Unrelayable + Relay.SendFailures + Relay.Cancelled;

    /// <summary>Datagrams received at the far end or counted as dropped.</summary>
    public long Accounted() => Rig.FarReceived + Dropped();

    /// <summary>True when all <paramref name="generated"/> datagrams are accounted for.</summary>
    public bool Settled(long generated) => Accounted() >= generated;

    /// <summary>The drops by where and why (PascalCase keys; JSON makes them snake_case), only those that happened.</summary>
    public Dictionary<string, long> DropsByReason()
    {
        Dictionary<string, long> drops = [];
        Rig.AddQueueDrops(drops);
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
