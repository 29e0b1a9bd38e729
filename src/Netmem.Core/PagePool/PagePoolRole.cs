namespace Netmem;

/// <summary>
/// What a pool feeds on its queue, for metrics and introspection: an operator knows a queue's
/// header and payload pools by their role, which stays the same when the queue restarts and its
/// pools are replaced.
/// </summary>
public enum PagePoolRole
{
    /// <summary>Not a queue's header or payload pool (a shared pool, a test pool).</summary>
    Other = 0,

    /// <summary>The queue's header pool: readable system pages.</summary>
    Header = 1,

    /// <summary>The queue's payload pool: takes the queue's memory provider when it has one.</summary>
    Payload = 2,
}
