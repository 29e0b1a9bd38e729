using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Netmem.Native;

/// <summary><c>struct rtnl_link_stats64</c>, the interface counters the kernel keeps (first eight fields).</summary>
public readonly record struct LinkStats64(ulong RxPackets, ulong TxPackets, ulong RxBytes, ulong TxBytes, ulong RxErrors, ulong TxErrors, ulong RxDropped, ulong TxDropped);

/// <summary>Where an interface runs its XDP program (<c>IFLA_XDP_ATTACHED</c>).</summary>
public enum XdpAttachMode : byte
{
    /// <summary>No program.</summary>
    None = 0,

    /// <summary>Native (driver) XDP.</summary>
    Driver = 1,

    /// <summary>Generic (SKB) XDP, run by the stack.</summary>
    Generic = 2,

    /// <summary>Offloaded to the NIC.</summary>
    Hardware = 3,

    /// <summary>Several programs in several modes.</summary>
    Multiple = 4,
}

/// <summary>What <see cref="RtNetlink.GetLink"/> reports of one interface.</summary>
/// <param name="IfIndex">The interface index.</param>
/// <param name="Name">The interface name.</param>
/// <param name="Flags">IFF_* flags (IFF_UP is 1).</param>
/// <param name="Mtu">The MTU.</param>
/// <param name="TxQueueLength">txqueuelen.</param>
/// <param name="Stats">The 64-bit counters.</param>
/// <param name="Xdp">Where its XDP program runs, if any.</param>
/// <param name="RxQueues">Number of rx queues (IFLA_NUM_RX_QUEUES).</param>
/// <param name="MacAddress">The link-layer address (IFLA_ADDRESS), empty when the link has none.</param>
internal readonly record struct LinkInfo(int IfIndex, string Name, uint Flags, int Mtu, int TxQueueLength, LinkStats64 Stats, XdpAttachMode Xdp, int RxQueues, ReadOnlyMemory<byte> MacAddress)
{
    /// <summary>Whether the link is administratively up.</summary>
    public bool IsUp => (Flags & RtNetlink.IffUp) != 0;
}

/// <summary>
/// A route netlink socket (<c>NETLINK_ROUTE</c>) for the link and address configuration the
/// drivers, tests and tool need, without running <c>ip</c>: create a veth pair with its peer in
/// another namespace, set a link up, its MTU, txqueuelen, IFF_NOARP and IPv6 address generation,
/// add addresses, read a link's counters, delete a link.
/// </summary>
/// <remarks>
/// The socket acts in the network namespace of the thread that opened it (open it through
/// <see cref="NetNamespace.OpenRtNetlink"/> to act inside a namespace). Every request asks for an
/// acknowledgement and extended acks (<c>NETLINK_EXT_ACK</c>), so a refusal surfaces as a
/// <see cref="NativeException"/> with the kernel's errno and, where it gave one, its extack text.
/// Not thread-safe; <see cref="Dispose"/> closes the descriptor at once.
/// </remarks>
internal sealed unsafe class RtNetlink : IDisposable
{
    /// <summary><c>IFF_UP</c>.</summary>
    public const uint IffUp = 0x1;

    /// <summary><c>IFF_NOARP</c>.</summary>
    public const uint IffNoArp = 0x80;

    private const int AfNetlink = 16;
    private const byte AfInet = 2;
    private const byte AfInet6 = 10;
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;
    private const int NetlinkRoute = 0;
    private const int SolNetlink = 270;
    private const int NetlinkCapAck = 10;
    private const int NetlinkExtAck = 11;

    private const ushort NlmsgError = 2;
    private const ushort NlmsgDone = 3;
    private const ushort NlmFRequest = 0x1;
    private const ushort NlmFAck = 0x4;
    private const ushort NlmFExcl = 0x200;
    private const ushort NlmFCreate = 0x400;
    private const ushort NlmFAckTlvs = 0x200;
    private const ushort NlmsgerrAttrMsg = 1;

    private const ushort RtmNewLink = 16;
    private const ushort RtmDelLink = 17;
    private const ushort RtmGetLink = 18;
    private const ushort RtmNewAddr = 20;
    private const ushort RtmNewNeigh = 28;
    private const ushort NdaDst = 1;
    private const ushort NdaLladdr = 2;
    private const ushort NudPermanent = 0x80;

    private const ushort IflaAddress = 1;
    private const ushort IflaIfname = 3;
    private const ushort IflaMtu = 4;
    private const ushort IflaTxqlen = 13;
    private const ushort IflaLinkinfo = 18;
    private const ushort IflaStats64 = 23;
    private const ushort IflaAfSpec = 26;
    private const ushort IflaNetNsFd = 28;
    private const ushort IflaNumRxQueues = 32;
    private const ushort IflaXdp = 43;
    private const ushort IflaXdpAttached = 2;
    private const ushort IflaInfoKind = 1;
    private const ushort IflaInfoData = 2;
    private const ushort VethInfoPeer = 1;
    private const ushort IflaInet6AddrGenMode = 8;
    private const byte In6AddrGenModeNone = 1;
    private const byte In6AddrGenModeEui64 = 0;

    private const ushort IfaAddress = 1;
    private const ushort IfaLocal = 2;
    private const ushort IfaFlags = 8;
    private const byte IfaFNodad = 0x02;

    private readonly byte[] _rx = new byte[64 * 1024];
    private int _fd;
    private uint _seq;

    private RtNetlink(int fd) => _fd = fd;

    /// <summary>Opens a route netlink socket in the calling thread's network namespace.</summary>
    public static RtNetlink Open()
    {
        int fd = Libc.Socket(AfNetlink, SockRaw | SockCloexec, NetlinkRoute);
        if (fd < 0)
        {
            throw new NativeException("socket(AF_NETLINK)", Marshal.GetLastPInvokeError());
        }

        int one = 1;
        _ = Libc.Setsockopt(fd, SolNetlink, NetlinkCapAck, &one, sizeof(int));
        _ = Libc.Setsockopt(fd, SolNetlink, NetlinkExtAck, &one, sizeof(int));
        return new RtNetlink(fd);
    }

    /// <summary>
    /// Creates a veth pair: <paramref name="name"/> here (or in the namespace behind
    /// <paramref name="namespaceFd"/>), <paramref name="peerName"/> in the namespace behind
    /// <paramref name="peerNamespaceFd"/> (here when -1). Both start down.
    /// </summary>
    /// <exception cref="NativeException">EEXIST when a name is taken; EPERM without CAP_NET_ADMIN.</exception>
    public void CreateVethPair(string name, string peerName, int namespaceFd = -1, int peerNamespaceFd = -1)
    {
        CheckName(name);
        CheckName(peerName);
        var m = new NetlinkMessage(RtmNewLink, NlmFRequest | NlmFAck | NlmFCreate | NlmFExcl);
        m.Reserve(16).Clear();
        m.AddString(IflaIfname, name);
        if (namespaceFd >= 0)
        {
            m.AddU32(IflaNetNsFd, (uint)namespaceFd);
        }

        int info = m.BeginNested(IflaLinkinfo);
        m.AddString(IflaInfoKind, "veth");
        int data = m.BeginNested(IflaInfoData);
        int peer = m.BeginNested(VethInfoPeer);
        m.Reserve(16).Clear();
        m.AddString(IflaIfname, peerName);
        if (peerNamespaceFd >= 0)
        {
            m.AddU32(IflaNetNsFd, (uint)peerNamespaceFd);
        }

        m.EndNested(peer);
        m.EndNested(data);
        m.EndNested(info);
        Transact(m, $"create veth pair {name}/{peerName}", null);
    }

    /// <summary>Deletes interface <paramref name="name"/> (a veth's peer goes with it).</summary>
    /// <exception cref="NativeException">ENODEV when there is no such interface.</exception>
    public void DeleteLink(string name)
    {
        CheckName(name);
        var m = new NetlinkMessage(RtmDelLink, NlmFRequest | NlmFAck);
        m.Reserve(16).Clear();
        m.AddString(IflaIfname, name);
        Transact(m, $"delete link {name}", name);
    }

    /// <summary>
    /// Changes what is given of interface <paramref name="name"/>: administrative state, MTU,
    /// txqueuelen, IFF_NOARP, and whether IPv6 generates a link-local address
    /// (<paramref name="ipv6LinkLocal"/> false is <c>addrgenmode none</c>).
    /// </summary>
    /// <exception cref="NativeException">ENODEV for no such interface; EINVAL for an MTU the device refuses (with the kernel's extack text).</exception>
    public void SetLink(string name, bool? up = null, int? mtu = null, int? txQueueLength = null, bool? noArp = null, bool? ipv6LinkLocal = null)
    {
        CheckName(name);
        var m = new NetlinkMessage(RtmNewLink, NlmFRequest | NlmFAck);
        Span<byte> ifi = m.Reserve(16);
        ifi.Clear();
        uint flags = 0, change = 0;
        if (up is bool u)
        {
            change |= IffUp;
            flags |= u ? IffUp : 0;
        }

        if (noArp is bool n)
        {
            change |= IffNoArp;
            flags |= n ? IffNoArp : 0;
        }

        BinaryPrimitives.WriteUInt32LittleEndian(ifi[8..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(ifi[12..], change);
        m.AddString(IflaIfname, name);
        if (mtu is int mt)
        {
            m.AddU32(IflaMtu, (uint)mt);
        }

        if (txQueueLength is int q)
        {
            m.AddU32(IflaTxqlen, (uint)q);
        }

        if (ipv6LinkLocal is bool ll)
        {
            int spec = m.BeginNested(IflaAfSpec);
            int inet6 = m.BeginNested(AfInet6);
            m.AddU8(IflaInet6AddrGenMode, ll ? In6AddrGenModeEui64 : In6AddrGenModeNone);
            m.EndNested(inet6);
            m.EndNested(spec);
        }

        Transact(m, $"set link {name}", name);
    }

    /// <summary>Adds <paramref name="address"/>/<paramref name="prefixLength"/> to <paramref name="name"/>; IPv6 addresses skip duplicate detection (usable at once).</summary>
    /// <exception cref="NativeException">ENODEV for no such interface; EEXIST when the address is already there.</exception>
    public void AddAddress(string name, IPAddress address, int prefixLength)
    {
        ArgumentNullException.ThrowIfNull(address);
        int ifIndex = GetLink(name).IfIndex;
        bool v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
        if (prefixLength < 0 || prefixLength > (v6 ? 128 : 32))
        {
            throw new ArgumentOutOfRangeException(nameof(prefixLength), prefixLength, "prefix length out of range for the address family");
        }

        var m = new NetlinkMessage(RtmNewAddr, NlmFRequest | NlmFAck | NlmFCreate | NlmFExcl);
        Span<byte> ifa = m.Reserve(8);
        ifa.Clear();
        ifa[0] = (byte)(v6 ? AfInet6 : AfInet);
        ifa[1] = (byte)prefixLength;
        ifa[2] = v6 ? IfaFNodad : (byte)0;
        BinaryPrimitives.WriteInt32LittleEndian(ifa[4..], ifIndex);
        byte[] bytes = address.GetAddressBytes();
        m.AddAttribute(IfaLocal, bytes);
        m.AddAttribute(IfaAddress, bytes);
        if (v6)
        {
            m.AddU32(IfaFlags, IfaFNodad);
        }

        Transact(m, $"add address {address}/{prefixLength} to {name}", name);
    }

    /// <summary>
    /// Adds a permanent neighbour entry on <paramref name="name"/>: <paramref name="address"/> is
    /// reached at link-layer address <paramref name="mac"/>, with no ARP or neighbour discovery.
    /// </summary>
    /// <exception cref="NativeException">ENODEV for no such interface.</exception>
    public void AddNeighbour(string name, IPAddress address, ReadOnlySpan<byte> mac)
    {
        ArgumentNullException.ThrowIfNull(address);
        int ifIndex = GetLink(name).IfIndex;
        bool v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
        var m = new NetlinkMessage(RtmNewNeigh, NlmFRequest | NlmFAck | NlmFCreate | 0x100 /* NLM_F_REPLACE */);
        Span<byte> nd = m.Reserve(12);
        nd.Clear();
        nd[0] = v6 ? AfInet6 : AfInet;
        BinaryPrimitives.WriteInt32LittleEndian(nd[4..], ifIndex);
        BinaryPrimitives.WriteUInt16LittleEndian(nd[8..], NudPermanent);
        m.AddAttribute(NdaDst, address.GetAddressBytes());
        m.AddAttribute(NdaLladdr, mac);
        Transact(m, $"add neighbour {address} on {name}", name);
    }

    /// <summary>Reads interface <paramref name="name"/>: index, flags, MTU, counters, XDP mode.</summary>
    /// <exception cref="NativeException">ENODEV when there is no such interface in this namespace.</exception>
    public LinkInfo GetLink(string name)
    {
        CheckName(name);
        var m = new NetlinkMessage(RtmGetLink, NlmFRequest | NlmFAck);
        m.Reserve(16).Clear();
        m.AddString(IflaIfname, name);
        LinkInfo? found = null;
        Transact(m, $"get link {name}", name, reply =>
        {
            if (BinaryPrimitives.ReadUInt16LittleEndian(reply[4..]) == RtmNewLink)
            {
                found = ParseLink(reply[16..]);
            }
        });
        return found ?? throw new NativeException("rtnetlink(get link " + name + ")", Errno.ENODEV, $"no interface named '{name}' in this network namespace.");
    }

    /// <summary>Closes the socket.</summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = Libc.Close(fd);
        }
    }

    private static LinkInfo ParseLink(ReadOnlySpan<byte> body)
    {
        int index = BinaryPrimitives.ReadInt32LittleEndian(body[4..]);
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(body[8..]);
        string name = "";
        int mtu = 0, txq = 0, rxq = 0;
        LinkStats64 stats = default;
        byte[] mac = [];
        XdpAttachMode xdp = XdpAttachMode.None;
        foreach ((ushort type, ReadOnlySpan<byte> v) in new AttributeReader(body[16..]))
        {
            switch (type & 0x3FFF)
            {
                case IflaIfname:
                    name = Encoding.ASCII.GetString(v.TrimEnd((byte)0));
                    break;
                case IflaAddress:
                    mac = v.ToArray();
                    break;
                case IflaMtu:
                    mtu = BinaryPrimitives.ReadInt32LittleEndian(v);
                    break;
                case IflaTxqlen:
                    txq = BinaryPrimitives.ReadInt32LittleEndian(v);
                    break;
                case IflaNumRxQueues:
                    rxq = BinaryPrimitives.ReadInt32LittleEndian(v);
                    break;
                case IflaStats64 when v.Length >= 64:
                    stats = new LinkStats64(U64(v, 0), U64(v, 1), U64(v, 2), U64(v, 3), U64(v, 4), U64(v, 5), U64(v, 6), U64(v, 7));
                    break;
                case IflaXdp:
                    foreach ((ushort t, ReadOnlySpan<byte> x) in new AttributeReader(v))
                    {
                        if ((t & 0x3FFF) == IflaXdpAttached && x.Length >= 1)
                        {
                            xdp = (XdpAttachMode)x[0];
                        }
                    }

                    break;
            }
        }

        return new LinkInfo(index, name, flags, mtu, txq, stats, xdp, rxq, mac);
    }

    private static ulong U64(ReadOnlySpan<byte> v, int i) => BinaryPrimitives.ReadUInt64LittleEndian(v[(i * 8)..]);

    private delegate void ReplyHandler(ReadOnlySpan<byte> message);

    private void Transact(NetlinkMessage m, string what, string? linkName, ReplyHandler? onReply = null)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        uint seq = ++_seq;
        ReadOnlySpan<byte> req = m.Finish(seq);
        byte* sa = stackalloc byte[12];
        new Span<byte>(sa, 12).Clear();
        *(ushort*)sa = AfNetlink;
        fixed (byte* p = req)
        {
            if (Libc.Sendto(_fd, p, (nuint)req.Length, 0, sa, 12) < 0)
            {
                throw new NativeException("sendto(rtnetlink " + what + ")", Marshal.GetLastPInvokeError());
            }
        }

        while (true)
        {
            nint n;
            fixed (byte* p = _rx)
            {
                n = Libc.Recvfrom(_fd, p, (nuint)_rx.Length, 0, null, null);
            }

            if (n < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errno.EINTR)
                {
                    continue;
                }

                throw new NativeException("recvfrom(rtnetlink " + what + ")", errno);
            }

            var buf = new ReadOnlySpan<byte>(_rx, 0, (int)n);
            while (buf.Length >= 16)
            {
                int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(buf);
                if (len < 16 || len > buf.Length)
                {
                    break;
                }

                ReadOnlySpan<byte> msg = buf[..len];
                ushort type = BinaryPrimitives.ReadUInt16LittleEndian(msg[4..]);
                uint rseq = BinaryPrimitives.ReadUInt32LittleEndian(msg[8..]);
                buf = buf[Math.Min(NetlinkMessage.Align(len), buf.Length)..];
                if (rseq != seq)
                {
                    continue;
                }

                if (type == NlmsgError)
                {
                    int error = -BinaryPrimitives.ReadInt32LittleEndian(msg[16..]);
                    if (error == 0)
                    {
                        return;
                    }

                    throw Refused(what, linkName, error, ExtackMessage(msg));
                }

                if (type == NlmsgDone)
                {
                    return;
                }

                onReply?.Invoke(msg);
            }
        }
    }

    /// <summary>The extack text of an error message (<c>NLMSGERR_ATTR_MSG</c>), or null.</summary>
    private static string? ExtackMessage(ReadOnlySpan<byte> msg)
    {
        ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(msg[6..]);
        if ((flags & NlmFAckTlvs) == 0 || msg.Length < 36)
        {
            return null;
        }

        // nlmsgerr: error (4) + the request's header (16; the payload is capped away) then TLVs.
        foreach ((ushort t, ReadOnlySpan<byte> v) in new AttributeReader(msg[36..]))
        {
            if (t == NlmsgerrAttrMsg)
            {
                return Encoding.UTF8.GetString(v.TrimEnd((byte)0));
            }
        }

        return null;
    }

    private static NativeException Refused(string what, string? linkName, int errno, string? extack)
    {
        string call = "rtnetlink(" + what + ")";
        if (extack is { Length: > 0 })
        {
            return new NativeException(call, errno, extack);
        }

        return errno switch
        {
            Errno.ENODEV when linkName is not null => new NativeException(call, errno, $"no interface named '{linkName}' in this network namespace."),
            Errno.EPERM => new NativeException(call, errno, "changing links and addresses needs CAP_NET_ADMIN; run as root."),
            _ => new NativeException(call, errno),
        };
    }

    private static void CheckName(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (name.Length > 15 || name.Contains('/', StringComparison.Ordinal) || name.Contains(' ', StringComparison.Ordinal) || name.Contains(':', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{name}' is not a valid interface name (at most 15 characters, no '/', ':' or space).", nameof(name));
        }
    }

    /// <summary>One <c>rtattr</c>: its type and value.</summary>
    private readonly ref struct Attribute(ushort type, ReadOnlySpan<byte> value)
    {
        private readonly ushort _type = type;
        private readonly ReadOnlySpan<byte> _value = value;

        public void Deconstruct(out ushort type, out ReadOnlySpan<byte> value)
        {
            type = _type;
            value = _value;
        }
    }

    /// <summary>Walks a run of <c>rtattr</c>s.</summary>
    private ref struct AttributeReader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _rest = data;

        public Attribute Current { get; private set; }

        public readonly AttributeReader GetEnumerator() => this;

        public bool MoveNext()
        {
            if (_rest.Length < 4)
            {
                return false;
            }

            int len = BinaryPrimitives.ReadUInt16LittleEndian(_rest);
            if (len < 4 || len > _rest.Length)
            {
                return false;
            }

            Current = new Attribute(BinaryPrimitives.ReadUInt16LittleEndian(_rest[2..]), _rest[4..len]);
            _rest = _rest[Math.Min(NetlinkMessage.Align(len), _rest.Length)..];
            return true;
        }
    }
}
