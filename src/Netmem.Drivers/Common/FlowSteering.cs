using System.Collections.Concurrent;
using Netmem.Devmem;

namespace Netmem.Drivers.Common;

/// <summary>
/// Steers received datagrams to sockets by flow: an exact 5-tuple match first, then the
/// protocol and destination port. Lookups allocate nothing.
/// </summary>
public sealed class FlowSteering
{
    private readonly ConcurrentDictionary<FlowKey, DevmemSocket> _flows = new();

    /// <summary>A driver creates its own table; a user reaches it through the driver's <c>Flows</c>.</summary>
    internal FlowSteering()
    {
    }

    /// <summary>Sockets now steered to.</summary>
    public int Count => _flows.Count;

    /// <summary>Opens a socket for <paramref name="flow"/>. EADDRINUSE when the flow already has one.</summary>
    public DevmemSocket Open(FlowKey flow, int maxOutstanding = 4096)
    {
        var socket = new DevmemSocket(flow, maxOutstanding);
        if (!_flows.TryAdd(flow, socket))
        {
            socket.Dispose();
            throw new NetmemException(Native.Errno.EADDRINUSE, $"flow {flow} already has a socket");
        }

        return socket;
    }

    /// <summary>Stops steering to <paramref name="socket"/> and closes it, returning all it holds.</summary>
    public void Close(DevmemSocket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _flows.TryRemove(new KeyValuePair<FlowKey, DevmemSocket>(socket.Flow, socket));
        socket.Dispose();
    }

    /// <summary>The socket for a datagram, or null.</summary>
    public DevmemSocket? Lookup(in FlowKey exact)
    {
        if (!exact.IsPortOnly && _flows.TryGetValue(exact, out DevmemSocket? s))
        {
            return s;
        }

        return _flows.TryGetValue(exact.PortOnly, out s) ? s : null;
    }

    /// <summary>Closes every socket.</summary>
    internal void CloseAll()
    {
        foreach (KeyValuePair<FlowKey, DevmemSocket> kv in _flows)
        {
            Close(kv.Value);
        }
    }
}
