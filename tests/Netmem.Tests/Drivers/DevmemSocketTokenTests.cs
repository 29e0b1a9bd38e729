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
        Assert.Equal(0, socket.DontNeed(ReadOnlySpan<uint>.Empty));
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

    [Fact]
    public void DontNeed_takes_token_ranges_and_frees_every_held_token_in_them()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port));
        Inject(10);
        uint[] tokens = ReceiveTokens(socket);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (uint)i), tokens.Order());
        long inflight = _nic.QueueMemory(0)!.PayloadPool.Inflight;

        Assert.Equal(4, socket.DontNeed([new DmabufToken(1, 4)]));
        Assert.Equal(6, socket.DontNeed([new DmabufToken(5, 3), DmabufToken.Single(8), new DmabufToken(9, 2)]));

        Assert.Equal(0, socket.TokensOutstanding);
        Assert.Equal(10, socket.DontNeedFreed);
        Assert.Equal(0, socket.DontNeed([new DmabufToken(1, 10)])); // all returned already

        // The netmems went back to the pool (its ring), not out of it.
        Assert.Equal(inflight, _nic.QueueMemory(0)!.PayloadPool.Inflight);
    }

    [Fact]
    public void Ranges_with_unknown_repeated_or_wrapping_tokens_free_only_the_held_ones_once()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port), maxOutstanding: 64);
        Inject(6);
        Assert.Equal(6, ReceiveTokens(socket).Length); // tokens 1..6

        // Token 0 is never issued; 2..3 twice; 65.. past the table; uint.MaxValue wraps to 0 and 1
        // as the kernel's u32 sum does; an empty range looks at nothing.
        int freed = socket.DontNeed([
            new DmabufToken(0, 4), new DmabufToken(2, 2), new DmabufToken(60, 100),
            new DmabufToken(uint.MaxValue, 3), new DmabufToken(5, 0)]);

        Assert.Equal(3, freed); // 1, 2, 3
        Assert.Equal(3, socket.TokensOutstanding);
        Assert.Equal(3, socket.DontNeed([new DmabufToken(4, 3)]));
        Assert.Equal(0, socket.TokensOutstanding);
    }

    [Fact]
    public void More_than_128_ranges_in_one_call_fail_EINVAL_and_free_nothing()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port));
        Inject(5);
        uint[] tokens = ReceiveTokens(socket);
        DmabufToken[] ranges = [.. Enumerable.Repeat(DmabufToken.Single(tokens[0]), DevmemSocket.MaxDontNeedTokens + 1)];
        uint[] single = [.. Enumerable.Repeat(tokens[0], DevmemSocket.MaxDontNeedTokens + 1)];
        long inflight = _nic.QueueMemory(0)!.PayloadPool.Inflight;

        NetmemException e = Assert.Throws<NetmemException>(() => socket.DontNeed(ranges));
        NetmemException e1 = Assert.Throws<NetmemException>(() => socket.DontNeed(single));

        Assert.Equal(Native.Errno.EINVAL, e.Errno);
        Assert.Equal("SO_DEVMEM_DONTNEED takes at most 128 token ranges per call; 129 given", e.Reason);
        Assert.Equal(Native.Errno.EINVAL, e1.Errno);
        Assert.Equal(5, socket.TokensOutstanding);
        Assert.Equal(0, socket.DontNeedFreed);
        Assert.Equal(inflight, _nic.QueueMemory(0)!.PayloadPool.Inflight);

        // Exactly 128 is accepted: the first frees the token, the other 127 repeat it.
        Assert.Equal(1, socket.DontNeed(ranges.AsSpan(0, DevmemSocket.MaxDontNeedTokens)));
        Assert.Equal(4, socket.TokensOutstanding);
    }

    [Fact]
    public void A_call_stops_after_1024_tokens_and_returns_what_it_freed_so_far()
    {
        DevmemSocket socket = _nic.OpenSocket(FlowKey.Udp(Port));
        Inject(10);
        Assert.Equal(10, ReceiveTokens(socket).Length); // tokens 1..10

        // Unknown tokens count towards the limit: 1020 of them leave room for tokens 1..4 only.
        Assert.Equal(4, socket.DontNeed([new DmabufToken(5000, 1020), new DmabufToken(1, 10)]));
        Assert.Equal(6, socket.TokensOutstanding);

        // A huge range is cut at 1024 tokens, not walked to its end.
        Assert.Equal(0, socket.DontNeed([new DmabufToken(100_000, uint.MaxValue), new DmabufToken(5, 6)]));
        Assert.Equal(6, socket.TokensOutstanding);

        // The caller calls again with the rest.
        Assert.Equal(6, socket.DontNeed([new DmabufToken(5, 6)]));
        Assert.Equal(0, socket.TokensOutstanding);
        Assert.Equal(10, socket.DontNeedFreed);
    }
}
