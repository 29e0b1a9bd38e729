namespace Netmem.Providers;

/// <summary>
/// Process-wide switch that guards the provider branch of the page pool's slow path and release
/// path, as the kernel's <c>page_pool_mem_providers</c> static key does. Each provider-backed pool
/// counts it up at init and down at destroy, so with no provider pool alive the branch is one
/// predictable, never-taken test.
/// </summary>
public static class MemoryProviderToggle
{
    private static int s_count;

    /// <summary>True while at least one provider-backed pool exists.</summary>
    public static bool IsEnabled => Volatile.Read(ref s_count) != 0;

    /// <summary>How many provider-backed pools hold the toggle on.</summary>
    public static int Count => Volatile.Read(ref s_count);

    internal static void Increment() => Interlocked.Increment(ref s_count);

    internal static void Decrement()
    {
        if (Interlocked.Decrement(ref s_count) < 0)
        {
            Interlocked.Increment(ref s_count);
            throw new InvalidOperationException("Memory provider toggle decremented below zero.");
        }
    }
}
