using Netmem.Net;
using Netmem.Tool.Cli;

namespace Netmem.Tool.Commands;

/// <summary>
/// PLACEHOLDER for the default command, owned by the SimNic/DevmemSocket work, which will replace
/// <see cref="RunOnce"/> and <see cref="RunUntilStopped"/> with a software NIC receiving into
/// page pools. Until then it runs a page-pool workout and prints the counters.
/// </summary>
/// <remarks>
/// Keep the contract the tool tests and <c>netmem trace/top/pools</c> demos rely on: with
/// <c>--wait</c> the command prints one line starting <c>demo: running</c> once its pools exist,
/// keeps creating and destroying a short-lived pool (so lifecycle events keep coming), and
/// exits 0 on Ctrl+C, SIGTERM (the <see cref="CommandContext.Cancellation"/>), end of stdin
/// (when stdin is a pipe or file other than /dev/null) or after <c>--seconds</c>.
/// </remarks>
internal sealed class DemoCommand : ICommand
{
    /// <summary>How often the <c>--wait</c> loop creates and destroys a short-lived pool.</summary>
    private static readonly TimeSpan ChurnPeriod = TimeSpan.FromMilliseconds(250);

    public string Name => "demo";

    public string Summary => "run a page-pool workout and print its counters (the default)";

    public string Usage => "netmem [demo] [--wait] [--seconds N]";

    public OptionKinds Options => OptionKinds.Wait | OptionKinds.Seconds;

    public IReadOnlyList<string> Examples =>
    [
        "netmem",
        "netmem demo --wait            # keep running for trace/top/pools",
        "netmem demo --wait --seconds 30",
    ];

    public int Run(CommandOptions options, CommandContext context)
    {
        if (!options.Wait && options.Duration is not null)
        {
            // --seconds alone bounds a waiting demo: run until it elapses.
            options.Wait = true;
        }

        return options.Wait ? RunUntilStopped(options, context) : RunOnce(context);
    }

    /// <summary>One workout on one pool, then destroy: the old <c>netmem</c> main.</summary>
    private static int RunOnce(CommandContext context)
    {
        var napi = new NapiContext("main");
        napi.BindToCurrentThread();
        var pool = new PagePool(new PagePoolParams { Napi = napi, Name = "netmem-main", Flags = PagePoolFlags.DmaMap });
        for (int round = 0; round < 10_000; round++)
        {
            Workout(pool, (byte)round);
        }

        context.Out.WriteLine($"pool {pool.Id} '{pool.Name}': {pool.GetStats()}");
        napi.Unbind();
        pool.Dispose();
        context.Out.WriteLine($"after destroy: inflight {pool.GetStats().Inflight}, freed {pool.IsFreed}");
        return pool.IsFreed ? ExitCodes.Ok : ExitCodes.Failure;
    }

    private static int RunUntilStopped(CommandOptions options, CommandContext context)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(context.Cancellation);
        if (options.Duration is { } d)
        {
            stop.CancelAfter(d);
        }

        WatchStdin(stop);

        var napi = new NapiContext("demo-napi0");
        napi.BindToCurrentThread();
        var rxq = new RxQueue(0, napi);
        var rx = new PagePool(new PagePoolParams { Napi = napi, Queue = rxq, Ifindex = 1, Name = "demo-rx0", Flags = PagePoolFlags.DmaMap });
        var shared = new PagePool(new PagePoolParams { Ifindex = 1, Queue = new RxQueue(1), Name = "demo-shared" });
        context.Out.WriteLine($"demo: running in pid {Environment.ProcessId}, pools {rx.Id} '{rx.Name}' and {shared.Id} '{shared.Name}'; Ctrl+C or SIGTERM stops");
        context.Out.Flush();

        long nextChurn = 0;
        byte round = 0;
        while (!stop.IsCancellationRequested)
        {
            Workout(rx, round++);
            NetmemRef s = shared.AllocNetmem();
            shared.PutFullNetmem(s, allowDirect: false);
            if (Environment.TickCount64 >= nextChurn)
            {
                Churn();
                nextChurn = Environment.TickCount64 + (long)ChurnPeriod.TotalMilliseconds;
            }

            stop.Token.WaitHandle.WaitOne(10);
        }

        context.Out.WriteLine($"pool {rx.Id} '{rx.Name}': {rx.GetStats()}");
        context.Out.WriteLine($"pool {shared.Id} '{shared.Name}': {shared.GetStats()}");
        napi.Unbind();
        rx.Dispose();
        shared.Dispose();
        return rx.IsFreed && shared.IsFreed ? ExitCodes.Ok : ExitCodes.Failure;
    }

    /// <summary>Allocates a batch, recycles half through the alloc cache and half through the ring (as a remote CPU would).</summary>
    private static void Workout(PagePool pool, byte stamp)
    {
        Span<NetmemRef> batch = stackalloc NetmemRef[256];
        int n = pool.AllocBulk(batch);
        for (int i = 0; i < n; i++)
        {
            batch[i].GetPageSpan()[0] = stamp;
        }

        for (int i = 0; i < n / 2; i++)
        {
            pool.RecycleDirect(batch[i]);
        }

        pool.PutBulk(batch[(n / 2)..n]);
    }

    /// <summary>A short-lived shared pool: created, used, destroyed, so a tracer always sees pool lifecycles.</summary>
    private static void Churn()
    {
        var pool = new PagePool(new PagePoolParams { Ifindex = 1, Name = "demo-churn", PoolSize = 64 });
        NetmemRef a = pool.AllocNetmem();
        pool.PutFullNetmem(a, allowDirect: false);
        pool.Dispose();
    }

    /// <summary>Ends the demo at end of stdin when stdin is a pipe or file; not for /dev/null or a terminal.</summary>
    private static void WatchStdin(CancellationTokenSource stop)
    {
        if (!Console.IsInputRedirected || StdinIsDevNull())
        {
            return;
        }

        var reader = new Thread(() =>
        {
            try
            {
                Stream stdin = Console.OpenStandardInput();
                Span<byte> buffer = stackalloc byte[256];
                while (stdin.Read(buffer) > 0)
                {
                }
            }
            catch (IOException)
            {
            }

            try
            {
                stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // The demo already ended.
            }
        })
        {
            IsBackground = true,
            Name = "demo-stdin",
        };
        reader.Start();
    }

    private static bool StdinIsDevNull()
    {
        try
        {
            return new FileInfo("/proc/self/fd/0").LinkTarget == "/dev/null";
        }
        catch (IOException)
        {
            return false;
        }
        catch (UnauthorizedAccessException)
        {
            return false;
        }
    }
}
