namespace Netmem.Genalloc;

/// <summary>
/// Which code path a <see cref="GenPool"/> uses to skip bitmap words that cannot hold the start
/// (all ones) or the end (all zeros) of a free run. Every path returns the same results; they
/// differ only in speed.
/// </summary>
public enum GenPoolSearch
{
    /// <summary>The widest accelerated vector path: <see cref="Vector512"/>, else <see cref="Vector256"/>, else <see cref="Scalar"/>.</summary>
    Auto,

    /// <summary>One 64-bit word at a time.</summary>
    Scalar,

    /// <summary>Two <c>Vector256&lt;ulong&gt;</c> per step (8 words, 512 bits of bitmap).</summary>
    Vector256,

    /// <summary>Two <c>Vector512&lt;ulong&gt;</c> per step (16 words, 1024 bits of bitmap).</summary>
    Vector512,
}
