using Netmem.Native;

namespace Netmem.Drivers.Xdp;

/// <summary>
/// The kernel side of an <see cref="XdpNic"/>: an XSKMAP with one slot per rx queue and the
/// redirect program (<see cref="BpfProgramBuilder.XskRedirect"/>) attached to the interface
/// through a BPF link, native XDP first and generic XDP where the driver has none.
/// </summary>
/// <remarks>
/// A queue without a socket in the map falls back to XDP_PASS. Disposing closes the link (the
/// kernel detaches the program), the program and the map; nothing stays attached after the
/// process ends either, since a link lives only as long as its descriptor.
/// </remarks>
public sealed class XdpProgram : IDisposable
{
    private int _mapFd;
    private int _progFd;
    private int _linkFd;

    private XdpProgram(int mapFd, int progFd, int linkFd, XdpAttachMode mode)
    {
        _mapFd = mapFd;
        _progFd = progFd;
        _linkFd = linkFd;
        Mode = mode;
    }

    /// <summary>Native (driver) or generic (SKB) XDP.</summary>
    public XdpAttachMode Mode { get; }

    /// <summary>The XSKMAP's descriptor.</summary>
    public int MapFd => _mapFd;

    /// <summary>
    /// Creates the map and program and attaches them to interface <paramref name="ifIndex"/> of
    /// the calling thread's network namespace.
    /// </summary>
    /// <exception cref="NativeException">EPERM without CAP_BPF/CAP_NET_ADMIN; ENODEV for no such interface; EBUSY when another program is attached.</exception>
    /// <exception cref="BpfLoadException">The verifier refused the program.</exception>
    public static XdpProgram Attach(int ifIndex, int queues, bool genericOnly)
    {
        int map = Bpf.MapCreate(Bpf.MapTypeXskMap, 4, 4, queues, "netmem_xsks");
        int prog = -1;
        try
        {
            prog = Bpf.ProgLoad(Bpf.ProgTypeXdp, BpfProgramBuilder.XskRedirect(map), "netmem_xsk", expectedAttachType: Bpf.AttachTypeXdp);
            int link;
            XdpAttachMode mode;
            if (!genericOnly && TryLink(prog, ifIndex, Bpf.XdpFlagsDrvMode, out link, out int errno))
            {
                mode = XdpAttachMode.Driver;
            }
            else if (TryLink(prog, ifIndex, Bpf.XdpFlagsSkbMode, out link, out errno))
            {
                mode = XdpAttachMode.Generic;
            }
            else
            {
                throw errno == Errno.ENODEV
                    ? new NativeException("bpf(BPF_LINK_CREATE)", errno, $"no interface with index {ifIndex} in this network namespace.")
                    : new NativeException("bpf(BPF_LINK_CREATE)", errno);
            }

            return new XdpProgram(map, prog, link, mode);
        }
        catch
        {
            if (prog >= 0)
            {
                Sys.Close(prog);
            }

            Sys.Close(map);
            throw;
        }
    }

    /// <summary>Puts the socket <paramref name="xskFd"/> in queue <paramref name="queue"/>'s slot.</summary>
    public void SetSocket(int queue, int xskFd) => Bpf.MapUpdate(_mapFd, (uint)queue, (uint)xskFd);

    /// <summary>Empties queue <paramref name="queue"/>'s slot: its frames go to the kernel's stack (XDP_PASS).</summary>
    public void ClearSocket(int queue) => Bpf.MapDelete(_mapFd, (uint)queue);

    /// <summary>Detaches the program and closes the link, program and map.</summary>
    public void Dispose()
    {
        foreach (int fd in new[] { Interlocked.Exchange(ref _linkFd, -1), Interlocked.Exchange(ref _progFd, -1), Interlocked.Exchange(ref _mapFd, -1) })
        {
            if (fd >= 0)
            {
                Sys.Close(fd);
            }
        }
    }

    private static bool TryLink(int prog, int ifIndex, uint flags, out int link, out int errno)
    {
        try
        {
            link = Bpf.LinkCreate(prog, ifIndex, Bpf.AttachTypeXdp, flags);
            errno = 0;
            return true;
        }
        catch (NativeException e)
        {
            link = -1;
            errno = e.ErrorNumber;
            if (errno == Errno.EPERM)
            {
                throw;
            }

            return false;
        }
    }
}
