namespace Netmem.Genalloc;

/// <summary>How a <see cref="GenPool"/> chooses where in its chunks an allocation goes.</summary>
public enum GenPoolAlgorithm
{
    /// <summary>
    /// The first free run that fits, searching each chunk from its next-fit hint and wrapping
    /// around to the chunk's start (the kernel's <c>gen_pool_first_fit</c>, relaxed by the hint).
    /// </summary>
    FirstFit,

    /// <summary>
    /// The smallest free run that fits, over every chunk; ties go to the lowest chunk and address.
    /// Always scans every chunk's whole bitmap, stopping early only on an exact fit
    /// (the kernel's <c>gen_pool_best_fit</c>, but across chunks rather than within the first one).
    /// </summary>
    BestFit,

    /// <summary>
    /// First fit, with the address aligned to the allocation's size rounded up to a power of two
    /// (the kernel's <c>gen_pool_first_fit_order_align</c>). The alignment is of the address
    /// itself, not of the offset in the chunk; the two agree when the chunk start is so aligned.
    /// </summary>
    FirstFitOrderAlign,
}
