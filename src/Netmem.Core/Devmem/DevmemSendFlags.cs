namespace Netmem.Devmem;

/// <summary>Flags of a devmem send (the <c>sendmsg</c> flags that matter for it).</summary>
[Flags]
public enum DevmemSendFlags
{
    /// <summary>No flags: a send from a dmabuf is then refused (EINVAL).</summary>
    None = 0,

    /// <summary>
    /// <c>MSG_ZEROCOPY</c>: the payload stays in place until the device has read it, and a
    /// <see cref="ZeroCopyCompletion"/> says when. A send from a dmabuf requires it (and
    /// <see cref="DevmemSocket.ZeroCopy"/> on the socket), as the kernel does.
    /// </summary>
    ZeroCopy = 1,
}
