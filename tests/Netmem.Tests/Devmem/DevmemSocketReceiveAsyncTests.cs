using Netmem.Devmem;
using Netmem.Tests.PagePools;
using Xunit;

namespace Netmem.Tests.Devmem;

/// <summary>
/// <see cref="DevmemSocket.ReceiveAsync"/>: data, waiting, cancellation, close while waiting,
/// one waiter at a time, no allocation per wait. Datagrams are pool pages delivered as readable
/// fragments, so every test can check that each page went back to its pool.
/// </summary>
public sealed class DevmemSocketReceiveAsyncTests : IDisposable
{
    private readonly PageArena _arena = new(8 << 20);
    private readonly PagePool _pool;
    private readonly DevmemSocket _socket = new(FlowKey.Udp(9100), maxOutstanding: 64);
    private readonly DmabufCmsg[] _cmsgs = new DmabufCmsg[8];
    private readonly byte[] _linear = new byte[8 * 4096];

    public DevmemSocketReceiveAsyncTests() => _pool = PoolTestKit.Shared(_arena, poolSize: 64, name: "receive-async");

    /// <summary>Every page came back: the pool frees itself at once and the arena is whole.</summary>
    public void Dispose()
    {
        _socket.Dispose();
        _pool.Dispose();
        Assert.True(_pool.IsFreed);
        Assert.True(PoolTestKit.ArenaWhole(_arena));
        _arena.Dispose();
    }

    /// <summary>Delivers one datagram of <paramref name="length"/> bytes of <paramref name="fill"/>.</summary>
    private void Deliver(int length, byte fill)
    {
        NetmemRef page = _pool.AllocNetmem();
        page.GetPageSpan()[..length].Fill(fill);
        Assert.True(_socket.TryDeliver([new RxFragment(page, 0, length)]));
    }

    [Fact]
    public async Task Completes_synchronously_with_what_is_already_queued()
    {
        Deliver(100, 0x11);

        ValueTask<int> receive = _socket.ReceiveAsync(_cmsgs, _linear, TestContext.Current.CancellationToken);

        Assert.True(receive.IsCompletedSuccessfully);
        Assert.Equal(1, await receive);
        Assert.Equal(DevmemCmsgType.Linear, _cmsgs[0].Type);
        Assert.Equal(100u, _cmsgs[0].FragSize);
        Assert.Equal(DmabufCmsgFlags.EndOfPacket, _cmsgs[0].Flags);
        Assert.All(_linear.AsSpan(0, 100).ToArray(), b => Assert.Equal(0x11, b));
    }

    [Fact]
    public async Task Waits_while_nothing_is_queued_and_completes_with_the_next_datagram()
    {
        ValueTask<int> receive = _socket.ReceiveAsync(_cmsgs, _linear, TestContext.Current.CancellationToken);
        Assert.False(receive.IsCompleted);

        Deliver(1400, 0x5a);
        int n = await receive;

        Assert.Equal(1, n);
        Assert.Equal(DevmemCmsgType.Linear, _cmsgs[0].Type);
        Assert.Equal(0, _cmsgs[0].LinearOffset);
        Assert.Equal(1400u, _cmsgs[0].FragSize);
        Assert.All(_linear.AsSpan(0, 1400).ToArray(), b => Assert.Equal(0x5a, b));
        Assert.Equal(1, _socket.ReceivedFragments);
        Assert.Equal(0, _socket.QueuedFragments);
    }

    [Fact]
    public async Task Cancelling_the_wait_fails_it_with_the_token_and_takes_nothing()
    {
        using var cts = new CancellationTokenSource();
        ValueTask<int> receive = _socket.ReceiveAsync(_cmsgs, _linear, cts.Token);

        await cts.CancelAsync();
        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await receive);
        Assert.Equal(cts.Token, e.CancellationToken);

        // The socket still works: the next datagram goes to the next receive, nothing was lost.
        Deliver(64, 0x01);
        Assert.Equal(1, await _socket.ReceiveAsync(_cmsgs, _linear, TestContext.Current.CancellationToken));
        Assert.Equal(1, _socket.ReceivedFragments);
    }

    [Fact]
    public async Task An_already_cancelled_token_fails_at_once_and_leaves_queued_data()
    {
        Deliver(64, 0x02);
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();

        ValueTask<int> receive = _socket.ReceiveAsync(_cmsgs, _linear, cts.Token);

        Assert.True(receive.IsCanceled);
        Assert.Equal(1, _socket.QueuedFragments);
        Assert.Equal(0, _socket.ReceivedFragments);
    }

    [Fact]
    public async Task Closing_the_socket_while_waiting_fails_the_wait_with_ObjectDisposedException()
    {
        ValueTask<int> receive = _socket.ReceiveAsync(_cmsgs, _linear, TestContext.Current.CancellationToken);

        _socket.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await receive);
        Assert.True(_socket.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => { _ = _socket.ReceiveAsync(_cmsgs, _linear, TestContext.Current.CancellationToken).AsTask(); });
    }

    [Fact]
    public async Task A_second_receive_while_one_waits_is_refused_and_the_first_still_completes()
    {
        ValueTask<int> first = _socket.ReceiveAsync(_cmsgs, _linear, TestContext.Current.CancellationToken);

        var e = Assert.Throws<InvalidOperationException>(() => { _ = _socket.ReceiveAsync(new DmabufCmsg[1], new byte[4096], TestContext.Current.CancellationToken).AsTask(); });
        Assert.Contains("still waiting", e.Message, StringComparison.Ordinal);

        Deliver(10, 0x03);
        Assert.Equal(1, await first);
    }

    [Fact]
    public async Task A_producer_thread_and_an_awaiting_consumer_pass_every_datagram_once()
    {
        const int Datagrams = 2000;
        var producer = new Thread(() =>
        {
            for (int i = 0; i < Datagrams; i++)
            {
                NetmemRef page = _pool.AllocNetmem();
                page.GetPageSpan()[0] = (byte)i;
                while (!_socket.TryDeliver([new RxFragment(page, 0, 1)]))
                {
                    Thread.Yield(); // bounded by the consumer below, which always drains
                }
            }
        });
        producer.Start();

        int received = 0;
        byte expected = 0;
        while (received < Datagrams)
        {
            int n = await _socket.ReceiveAsync(_cmsgs, _linear, TestContext.Current.CancellationToken);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(expected++, _linear[_cmsgs[i].LinearOffset]);
            }

            received += n;
        }

        Assert.True(producer.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(Datagrams, received);
        Assert.Equal(Datagrams, _socket.DeliveredPackets);
        Assert.Equal(Datagrams, _socket.ReceivedFragments);
    }

    [Fact]
    public void A_wait_that_completes_before_it_is_awaited_allocates_nothing()
    {
        using var cts = new CancellationTokenSource();
        int failures = 0;
        for (int i = 0; i < 16; i++)
        {
            failures += WaitDeliverReceive(cts.Token); // first use creates the completion source and the registration node
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            failures += WaitDeliverReceive(cts.Token);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, failures);
        Assert.Equal(0, allocated);
        Assert.Equal(1016, _socket.ReceivedFragments);
    }

    /// <summary>One armed wait, one delivery, one receive; 1 when any step went wrong (no assertion here: asserting allocates).</summary>
#pragma warning disable CA2012 // The value task is completed (checked) before its result is read.
    private int WaitDeliverReceive(CancellationToken token)
    {
        ValueTask<int> receive = _socket.ReceiveAsync(_cmsgs, _linear, token);
        bool pending = !receive.IsCompleted;
        NetmemRef page = _pool.AllocNetmem();
        bool delivered = _socket.TryDeliver([new RxFragment(page, 0, 8)]);
        bool completed = receive.IsCompletedSuccessfully;
        return pending && delivered && completed && receive.GetAwaiter().GetResult() == 1 ? 0 : 1;
    }
#pragma warning restore CA2012
}
