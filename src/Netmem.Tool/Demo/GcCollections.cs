namespace Netmem.Tool.Demo;

/// <summary>Garbage collections per generation: a reading now, or the difference since one.</summary>
internal readonly record struct GcCollections(int Gen0, int Gen1, int Gen2)
{
    /// <summary>The process's collection counts so far.</summary>
    public static GcCollections Now() => new(GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));

    /// <summary>The collections each generation ran since <paramref name="start"/>.</summary>
    public static GcCollections Since(GcCollections start)
    {
        GcCollections now = Now();
        return new(now.Gen0 - start.Gen0, now.Gen1 - start.Gen1, now.Gen2 - start.Gen2);
    }
}
