using System.Runtime.InteropServices;

namespace Netmem.Devmem;

/// <summary>How the sends of a <see cref="ZeroCopyCompletion"/> ended.</summary>
public enum ZeroCopyCode : byte
{
    /// <summary>The device read the payload from the region itself: the ranges may be reused.</summary>
    ZeroCopy = 0,

    /// <summary>
    /// The driver copied the payload into a buffer of its own before the device read it (the
    /// kernel's <c>SO_EE_CODE_ZEROCOPY_COPIED</c>); the ranges may be reused.
    /// </summary>
    Copied = 1,

    /// <summary>
    /// The send never reached the wire (the queue stopped or the device went away); the ranges
    /// may be reused. The kernel reports such a send like any other; Netmem says so.
    /// </summary>
    Cancelled = 2,
}

/// <summary>
/// A MSG_ZEROCOPY notification: the zero-copy sends numbered <see cref="First"/> to
/// <see cref="Last"/> (inclusive, 32-bit sequence numbers that wrap) are done with their region
/// ranges (the kernel's <c>sock_extended_err</c> with <c>ee_info</c> .. <c>ee_data</c>).
/// Notifications come in sequence order; consecutive sends with the same <see cref="Code"/>
/// share one notification when the earlier one was not read yet.
/// </summary>
/// <param name="First">The first send's sequence number.</param>
/// <param name="Last">The last send's sequence number; equal to <paramref name="First"/> for one send.</param>
/// <param name="Code">How they ended.</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct ZeroCopyCompletion(uint First, uint Last, ZeroCopyCode Code)
{
    /// <summary>The number of sends covered (1 to 2^32, as a long).</summary>
    public long Count => (long)unchecked(Last - First) + 1;
}
