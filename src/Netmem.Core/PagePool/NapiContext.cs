namespace Netmem;

/// <summary>
/// The consumer binding of a page pool (the kernel's NAPI instance): the one thread, usually
/// pinned to one CPU, that allocates from the pool and may recycle directly into its alloc cache.
/// </summary>
public sealed class NapiContext
{
    private static int s_nextId;
    private int _ownerThreadId;

    /// <summary>Creates an unbound context with a new process-unique <see cref="Id"/>; a poll loop claims it with <see cref="BindToCurrentThread"/>.</summary>
    /// <param name="name">Name for logs; null gives <c>napi&lt;id&gt;</c>.</param>
    public NapiContext(string? name = null)
    {
        Id = Interlocked.Increment(ref s_nextId);
        Name = name ?? "napi" + Id.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Process-unique id, as reported in introspection.</summary>
    public int Id { get; }

    /// <summary>The name given at creation, or <c>napi&lt;id&gt;</c>; for logs and introspection.</summary>
    public string Name { get; }

    /// <summary>Managed thread id of the poll loop now running this context, 0 when none.</summary>
    public int OwnerThreadId => Volatile.Read(ref _ownerThreadId);

    /// <summary>True when called on the thread that owns this context.</summary>
    public bool IsCurrentThreadOwner => Volatile.Read(ref _ownerThreadId) == Environment.CurrentManagedThreadId;

    /// <summary>Claims the context for the calling thread (the poll loop, at start).</summary>
    public void BindToCurrentThread() => Volatile.Write(ref _ownerThreadId, Environment.CurrentManagedThreadId);

    /// <summary>Releases the context (the poll loop, at stop).</summary>
    public void Unbind() => Volatile.Write(ref _ownerThreadId, 0);

    /// <summary>Names the context for logs: <c>name(id N)</c>.</summary>
    public override string ToString() => $"{Name}(id {Id})";
}
