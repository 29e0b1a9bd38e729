namespace Netmem.Benchmarks;

/// <summary>
/// A long-lived second thread for multi-thread benchmarks: it runs one pre-built delegate each
/// time the benchmark thread calls <see cref="Start"/>, and <see cref="Wait"/> spins until it has
/// finished. Starting a round is one volatile write, and nothing is allocated per round, so the
/// memory diagnoser sees only what the measured code allocates.
/// </summary>
internal sealed class SpinWorker : IDisposable
{
    private readonly Thread _thread;
    private Action? _work;
    private int _go;
    private int _done;
    private volatile bool _stop;

    public SpinWorker(string name)
    {
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    /// <summary>Runs <paramref name="work"/> once on the worker thread. The delegate should be cached by the caller.</summary>
    public void Start(Action work)
    {
        _work = work;
        Volatile.Write(ref _go, _go + 1);
    }

    /// <summary>Spins (without sleeping) until the round started last has finished.</summary>
    public void Wait()
    {
        int target = Volatile.Read(ref _go);
        SpinWait spin = default;
        while (Volatile.Read(ref _done) != target)
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
    }

    private void Loop()
    {
        int seen = 0;
        while (true)
        {
            // Idle between rounds may sleep: it is not measured work.
            SpinWait spin = default;
            while (Volatile.Read(ref _go) == seen)
            {
                if (_stop)
                {
                    return;
                }

                spin.SpinOnce();
            }

            seen = Volatile.Read(ref _go);
            _work!();
            Volatile.Write(ref _done, seen);
        }
    }

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }
}
