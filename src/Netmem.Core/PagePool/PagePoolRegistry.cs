namespace Netmem;

/// <summary>
/// The process-wide table of live page pools by id. A descriptor names its pool by this id,
/// never by a GC handle, so a netmem can be returned knowing only its handle.
/// </summary>
internal static class PagePoolRegistry
{
    /// <summary>Highest pool id; ids are reused cyclically below it.</summary>
    public const int MaxId = 65535;

    private static readonly Lock s_lock = new();
    private static readonly PagePool?[] s_pools = new PagePool?[MaxId + 1];
    private static int s_lastId;

    /// <summary>Assigns the next free id, cyclically from 1, as the kernel's xa_alloc_cyclic does.</summary>
    public static int Register(PagePool pool)
    {
        lock (s_lock)
        {
            for (int attempt = 0; attempt < MaxId; attempt++)
            {
                s_lastId = s_lastId >= MaxId ? 1 : s_lastId + 1;
                if (s_pools[s_lastId] is null)
                {
                    Volatile.Write(ref s_pools[s_lastId], pool);
                    return s_lastId;
                }
            }

            throw new NetmemException(Native.Errno.ENOSPC, $"All {MaxId} page pool ids are in use.");
        }
    }

    public static void Unregister(int id)
    {
        lock (s_lock)
        {
            s_pools[id] = null;
        }
    }

    /// <summary>The live pool with <paramref name="id"/>, or null.</summary>
    public static PagePool? Find(int id) => (uint)id <= MaxId ? Volatile.Read(ref s_pools[id]) : null;

    /// <summary>Every live pool (and lingering ones), in id order.</summary>
    public static List<PagePool> All()
    {
        List<PagePool> list = [];
        foreach (PagePool? p in s_pools)
        {
            if (p is not null)
            {
                list.Add(p);
            }
        }

        return list;
    }
}
