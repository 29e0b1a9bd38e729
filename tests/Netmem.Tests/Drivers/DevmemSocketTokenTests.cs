using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Xunit;
using static Netmem.Tests.Drivers.SimNicTestKit;

namespace Netmem.Tests.Drivers;

/// <summary>DevmemSocket tokens: unique while held, DONTNEED counts, close returns all, backpressure drops.</summary>
public sealed class DevmemSocketTokenTests : IDisposable
{
    private const ushort Port = 7400;
    private readonly PageArena _arena = new(16 << 20);
    private readonly DmabufRegion _region = DmabufRegion.CreateMemfd("tokens", 2 << 20);
    private readonly SimNic _nic;
    private readonly DmabufBindingHandle _handle;
    private readonly PoolTracker _pools = new();
    private readonly byte[] _frame = new byte[9100];

    public DevmemSocketTokenTests()
    {
        _nic = new SimNic("tokens", new SimNicOptions { RxQueues = 1, RxRingSize = 32, PoolSize = 64, Arena = _arena });
        _handle = _nic.Device.BindDmabuf(_region, [0]);
        _pools.Capture(_nic);
    }

    public void Dispose()
    {
        _handle.Dispose();
        _pools.Capture(_nic);
        _nic.Dispose();
        _pools.AssertAllReturned();
        Assert.True(_handle.Binding.IsFreed);
        Assert.Equal(_handle.Binding.Size, _handle.Binding.Avail);
        Assert.Equal(_arena.TotalPages(0), _arena.FreePages(0));
        _region.Dispose();
        _arena.Dispose();
    }

    private void Inject(int count, int payload = 1000)
    {
        for (int i = 0; i < count; i++)
        {
            InjectBounded(_nic, 0, _frame.AsSpan(0, UdpFrame(_frame, (ulong)i, payload, Port)));
        }

        WaitIdle(_nic);
    }

    /// <summary>Receives everything queued without handing anything back; returns the tokens.</summary>
    private static uint[] ReceiveTokens(DevmemSocket socket)
    {
        var cmsgs = new DmabufCmsg[socket.MaxOutstanding];
        int n = socket.Receive(cmsgs, [], out int linearBytes);
        Assert.Equal(0, linearBytes);
        return [.. cmsgs.AsSpan(0, n).ToArray().Select(c => { Assert.Equal(DevmemCmsgType.Dmabuf, c.Type); return c.FragToken; })];
    }

    [Fact]
    public void Tokens_are_unique_and_nonzero_while_outstanding()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port));
        Inject(100);
        uint[] tokens = ReceiveTokens(socket);

        Assert.Equal(100, tokens.Length);
        Assert.Equal(100, tokens.Distinct().Count());
        Assert.DoesNotContain(0u, tokens);
        Assert.Equal(100, socket.TokensOutstanding);
        Assert.True(_handle.Binding.OutstandingNetIovs >= 100);
    }

    [Fact]
    public void DontNeed_returns_how_many_it_freed_and_a_repeated_token_frees_nothing()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port));
        Inject(10);
        uint[] tokens = ReceiveTokens(socket);
        long inflight = _nic.QueueMemory(0)!.PayloadPool.Inflight;

        Assert.Equal(4, socket.DontNeed(tokens.AsSpan(0, 4)));
        Assert.Equal(6, socket.TokensOutstanding);
        Assert.Equal(0, socket.DontNeed(tokens.AsSpan(0, 4)));           // already returned
        Assert.Equal(1, socket.DontNeed([tokens[4], tokens[4]]));         // the same token twice in one call
        Assert.Equal(5, socket.DontNeed(tokens.AsSpan(5)));
        Assert.Equal(0, socket.TokensOutstanding);
        Assert.Equal(10, socket.DontNeedFreed);

        // The netmems went back to the pool (its ring), not out of it: inflight counts them until the pool releases them.
        Assert.Equal(inflight, _nic.QueueMemory(0)!.PayloadPool.Inflight);
    }

    [Fact]
    public void Bogus_tokens_free_nothing()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port), maxOutstanding: 64);
        Inject(3);
        uint[] tokens = ReceiveTokens(socket);
        uint unused = Enumerable.Range(1, 64).Select(i => (uint)i).First(t => !tokens.Contains(t));

        Assert.Equal(0, socket.DontNeed([0u, 65u, 1_000_000u, uint.MaxValue, unused]));
        Assert.Equal(3, socket.TokensOutstanding);
        Assert.Equal(0, socket.DontNeed([]));
        Assert.Equal(3, socket.DontNeed(tokens));
    }

    [Fact]
    public void A_freed_token_may_be_reissued_but_never_while_it_is_outstanding()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port), maxOutstanding: 8);
        Inject(4);
        uint[] first = ReceiveTokens(socket);
        Assert.Equal(2, socket.DontNeed(first.AsSpan(0, 2)));
        Inject(4);
        uint[] second = ReceiveTokens(socket);

        Assert.Empty(second.Intersect(first.AsSpan(2).ToArray()));
        Assert.Equal(6, first.AsSpan(2).ToArray().Concat(second).Distinct().Count());
        Assert.Equal(6, socket.DontNeed([.. first.AsSpan(2).ToArray(), .. second]));
    }

    [Fact]
    public void Closing_a_socket_with_tokens_and_queued_fragments_returns_every_netmem()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port));
        Inject(20, payload: 6000); // two fragments each
        var cmsgs = new DmabufCmsg[15];
        Assert.Equal(15, socket.Receive(cmsgs, [], out _));
        Assert.Equal(15, socket.TokensOutstanding);
        Assert.Equal(25, socket.QueuedFragments);
        long outstandingBefore = _handle.Binding.OutstandingNetIovs;

        _nic.Flows.Close(socket);

        Assert.True(socket.IsClosed);
        Assert.Equal(0, socket.TokensOutstanding);
        Assert.Equal(0, socket.QueuedFragments);
        Assert.Equal(0, socket.DontNeed([cmsgs[0].FragToken]));
        Assert.Throws<ObjectDisposedException>(() => socket.Receive(cmsgs, [], out _));
        Assert.True(_handle.Binding.OutstandingNetIovs <= outstandingBefore);
        // Dispose() then checks every pool ends with inflight 0 and the binding whole.
    }

    [Fact]
    public void A_consumer_that_does_not_return_tokens_gets_backpressure_drops_and_nothing_leaks()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port), maxOutstanding: 8);
        Inject(20);
        Assert.Equal(8, _nic.QueueCounters(0).Packets);
        Assert.Equal(12, _nic.QueueCounters(0).DropsFor(DropReason.SocketBackpressure));
        Assert.Equal(8, socket.QueuedFragments);

        uint[] tokens = ReceiveTokens(socket); // held, never returned yet
        Assert.Equal(8, tokens.Length);
        Inject(5);
        Assert.Equal(17, _nic.QueueCounters(0).DropsFor(DropReason.SocketBackpressure));
        Assert.Equal(8, _nic.QueueCounters(0).Packets);

        Assert.Equal(3, socket.DontNeed(tokens.AsSpan(0, 3)));
        Inject(5);
        Assert.Equal(11, _nic.QueueCounters(0).Packets);
        Assert.Equal(19, _nic.QueueCounters(0).DropsFor(DropReason.SocketBackpressure));
        Assert.Equal(30, _nic.QueueCounters(0).Packets + _nic.QueueCounters(0).Drops);
        Assert.Equal(5 + 3, socket.TokensOutstanding + socket.QueuedFragments);
        // Dispose() closes the socket with 5 tokens and 3 fragments held and checks nothing leaked.
    }
}
