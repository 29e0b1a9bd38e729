using System.Runtime.InteropServices;

namespace Netmem.Devmem;

/// <summary>
/// A range of devmem tokens to hand back with <see cref="DevmemSocket.DontNeed(ReadOnlySpan{DmabufToken})"/>:
/// <see cref="TokenCount"/> tokens from <see cref="TokenStart"/> on (the kernel's
/// <c>struct dmabuf_token</c>, the <c>SO_DEVMEM_DONTNEED</c> argument).
/// </summary>
/// <param name="TokenStart">The first token of the range.</param>
/// <param name="TokenCount">How many consecutive tokens the range holds.</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct DmabufToken(uint TokenStart, uint TokenCount)
{
    /// <summary>A range of the single token <paramref name="token"/>.</summary>
    public static DmabufToken Single(uint token) => new(token, 1);
}
