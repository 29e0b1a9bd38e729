using Netmem.Drivers.Udp;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.UdpRx;

/// <summary>
/// Cancelling and disposing while a receive waits: the waiter is released with the right
/// exception, the receiver keeps working after a cancel, and after dispose nothing is in flight.
/// </summary>
public sealed class UdpReceiverLifecycleTests
{
    public static TheoryData<UdpReceivePath> Paths => [UdpReceivePath.IoUring, UdpReceivePath.RecvMmsg];

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task Cancelling_a_waiting_async_receive_throws_OperationCanceled_and_the_next_receive_still_gets_data(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = path });
        var batch = new UdpDatagram[8];
        using var cts = new CancellationTokenSource();

        ValueTask<int> pending = rx.ReceiveAsync(batch, cts.Token);
        Assert.False(pending.IsCompleted);
        await cts.CancelAsync();

        var e = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await pending);
        Assert.Equal(cts.Token, e.CancellationToken);
        Assert.Equal(0, rx.Held);

        UdpTraffic.SendNow(rx.LocalEndpoint, 1, _ => 200);
        int n = await rx.ReceiveAsync(batch, TestContext.Current.CancellationToken);
        Assert.Equal(1, n);
        Assert.Equal(200, batch[0].Length);
        rx.Return(batch[0]);
        Assert.Equal(0, rx.Held);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task An_async_receive_completes_when_a_datagram_arrives_after_it_started_waiting(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = path });
        var batch = new UdpDatagram[8];

        ValueTask<int> pending = rx.ReceiveAsync(batch, TestContext.Current.CancellationToken);
        UdpTraffic.SendNow(rx.LocalEndpoint, 1, _ => 300);
        int n = await pending;

        Assert.Equal(1, n);
        Assert.Equal(300, batch[0].Length);
        Assert.True(Netmem.Drivers.Parsing.FrameBuilder.VerifySequencePayload(batch[0].Payload, out ulong seq));
        Assert.Equal(UdpTraffic.Seq(0, 0), seq);
        rx.Return(batch[0]);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void Disposing_while_a_blocking_receive_waits_releases_it_with_ObjectDisposed_and_leaves_nothing_in_flight(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        var rx = new UdpReceiver(new UdpReceiverOptions { Path = path });
        PagePool pool = rx.Pool;

        // Hold two records so dispose has something of the caller's to take back too.
        UdpTraffic.SendNow(rx.LocalEndpoint, 2, _ => 64);
        var held = new UdpDatagram[2];
        int got = 0;
        while (got < 2)
        {
            got += rx.Receive(held.AsSpan(got), 10_000);
        }

        using var entered = new ManualResetEventSlim();
        Exception? seen = null;
        var waiter = new Thread(() =>
        {
            var batch = new UdpDatagram[8];
            entered.Set();
            try
            {
                rx.Receive(batch, -1);
            }
            catch (Exception e)
            {
                seen = e;
            }
        });
        waiter.Start();
        entered.Wait(TestContext.Current.CancellationToken);

        // Wait (bounded) until the receive holds the consumer section, i.e. it is in the kernel or about to be.
        Assert.True(SpinWait.SpinUntil(() => ReceiveInProgress(rx), 10_000));
        rx.Dispose();
        Assert.True(waiter.Join(10_000));

        Assert.IsType<ObjectDisposedException>(seen);
        Assert.Equal(0, pool.Inflight);
        Assert.True(pool.IsFreed);
        Assert.Equal(0, rx.Held);
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task Disposing_while_an_async_receive_waits_faults_it_with_ObjectDisposed_and_leaves_nothing_in_flight(UdpReceivePath path)
    {
        Requires.UdpPath(path);
        var rx = new UdpReceiver(new UdpReceiverOptions { Path = path });
        PagePool pool = rx.Pool;
        var batch = new UdpDatagram[8];

        ValueTask<int> pending = rx.ReceiveAsync(batch, TestContext.Current.CancellationToken);
        Assert.False(pending.IsCompleted);
        rx.Dispose();

        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await pending);
        Assert.Equal(0, pool.Inflight);
        Assert.True(pool.IsFreed);
    }

    [Fact]
    public async Task A_second_receive_while_one_is_running_is_refused()
    {
        using var rx = new UdpReceiver(new UdpReceiverOptions { Path = UdpReceivePath.RecvMmsg });
        var batch = new UdpDatagram[8];
        Task<int> pending = rx.ReceiveAsync(batch, TestContext.Current.CancellationToken).AsTask();
        Assert.True(SpinWait.SpinUntil(() => ReceiveInProgress(rx), 10_000));

        Assert.Throws<InvalidOperationException>(() => rx.TryReceive(batch));
        Assert.Throws<InvalidOperationException>(() => { _ = Start(rx, batch); });

        UdpTraffic.SendNow(rx.LocalEndpoint, 1, _ => 64);
        Assert.Equal(1, await pending);
        rx.Return(batch[0]);
    }

    private static Task<int> Start(UdpReceiver rx, UdpDatagram[] batch) => rx.ReceiveAsync(batch, TestContext.Current.CancellationToken).AsTask();

    /// <summary>True while a receive holds the consumer section (read through the private field: tests only).</summary>
    private static bool ReceiveInProgress(UdpReceiver rx) =>
        (int)typeof(UdpReceiver).GetField("_section", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(rx)! == 2;
}
