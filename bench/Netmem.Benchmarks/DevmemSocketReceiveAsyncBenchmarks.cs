using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using Netmem.Devmem;

namespace Netmem.Benchmarks;

/// <summary>
/// One datagram (a pool page delivered as a readable fragment) through a <see cref="DevmemSocket"/>:
/// the synchronous <c>Receive</c> (baseline), <c>ReceiveAsync</c> when data is already queued,
/// and <c>ReceiveAsync</c> that has to wait (armed, then woken by the delivery), with and without
/// a cancellation token. The peer is <see cref="Channel{T}"/>'s <c>ReadAsync</c> waiting for a
/// write, .NET's own pooled wait. The point is the allocation column: every socket row must show
/// 0 B per operation.
/// </summary>
[MemoryDiagnoser]
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "BenchmarkDotNet disposes through GlobalCleanup.")]
public class DevmemSocketReceiveAsyncBenchmarks
{
    private const int Batch = 1024;

    private readonly DmabufCmsg[] _cmsgs = new DmabufCmsg[4];
    private readonly byte[] _linear = new byte[4 * 4096];
    private PageArena? _arena;
    private PagePool? _pool;
    private DevmemSocket? _socket;
    private CancellationTokenSource? _cts;
    private Channel<int>? _channel;

    [GlobalSetup]
    public void Setup()
    {
        _arena = new PageArena(8 << 20);
        _pool = new PagePool(new PagePoolParams { Arena = _arena, PoolSize = 256, Name = "receive-async-bench" });
        _socket = new DevmemSocket(FlowKey.Udp(9200), maxOutstanding: 64);
        _cts = new CancellationTokenSource();
        _channel = Channel.CreateUnbounded<int>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _socket!.Dispose();
        _pool!.Dispose();
        _arena!.Dispose();
        _cts!.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Batch)]
    public int Receive_Sync()
    {
        int total = 0;
        for (int i = 0; i < Batch; i++)
        {
            Deliver();
            total += _socket!.Receive(_cmsgs, _linear, out _);
        }

        return total;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int ReceiveAsync_Ready()
    {
        int total = 0;
        for (int i = 0; i < Batch; i++)
        {
            Deliver();
            total += Completed(_socket!.ReceiveAsync(_cmsgs, _linear));
        }

        return total;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int ReceiveAsync_Waiting() => WaitThenDeliver(default);

    [Benchmark(OperationsPerInvoke = Batch)]
    public int ReceiveAsync_Waiting_Cancellable() => WaitThenDeliver(_cts!.Token);

    [Benchmark(OperationsPerInvoke = Batch)]
    public int Channel_ReadAsync_Waiting()
    {
        int total = 0;
        ChannelReader<int> reader = _channel!.Reader;
        ChannelWriter<int> writer = _channel.Writer;
        for (int i = 0; i < Batch; i++)
        {
            ValueTask<int> read = reader.ReadAsync();
            writer.TryWrite(1);
            total += Completed(read);
        }

        return total;
    }

    private int WaitThenDeliver(CancellationToken token)
    {
        int total = 0;
        for (int i = 0; i < Batch; i++)
        {
            ValueTask<int> receive = _socket!.ReceiveAsync(_cmsgs, _linear, token);
            Deliver();
            total += Completed(receive);
        }

        return total;
    }

    /// <summary>The result of a value task that every row completes before reading it (the delivery came first).</summary>
    private static int Completed(ValueTask<int> task)
    {
        if (!task.IsCompleted)
        {
            throw new InvalidOperationException("the receive did not complete after the delivery");
        }

#pragma warning disable CA2012 // Completed: checked just above.
        return task.GetAwaiter().GetResult();
#pragma warning restore CA2012
    }

    private void Deliver()
    {
        NetmemRef page = _pool!.AllocNetmem();
        if (!_socket!.TryDeliver([new RxFragment(page, 0, 64)]))
        {
            throw new InvalidOperationException("the socket refused a datagram");
        }
    }
}
