namespace Netmem.Devmem;

/// <summary>
/// One range of a devmem send: <paramref name="Offset"/> bytes into the region bound for
/// transmit and <paramref name="Length"/> bytes long. It is the kernel's iovec of a
/// <c>SCM_DEVMEM_DMABUF</c> send, whose base is an offset into the dmabuf, not a pointer.
/// </summary>
/// <param name="Offset">Byte offset into the bound region.</param>
/// <param name="Length">Bytes to send from there; a zero-length range adds nothing.</param>
public readonly record struct DmabufIov(ulong Offset, uint Length);
