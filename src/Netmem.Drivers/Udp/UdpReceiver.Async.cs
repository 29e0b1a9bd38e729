using System.Threading.Tasks.Sources;

namespace Netmem.Drivers.Udp;

public sealed partial class UdpReceiver
{
    /// <summary>
    /// The one asynchronous receive a receiver may have outstanding: a reusable
    /// <see cref="IValueTaskSource{TResult}"/> (no allocation per call) completed by a dedicated
    /// waiter thread that blocks in the kernel for the caller.
    /// </summary>
    /// <remarks>
    /// The waiter thread is started on the first receive that has to wait and lives until
    /// <see cref="Dispose"/>. It runs the same loop as a blocking <see cref="Receive"/>, inside
    /// the consumer section; cancellation wakes it through the path's eventfd. Every exception
    /// of that loop completes the operation; none escapes the thread.
    /// </remarks>
    private sealed class AsyncReceive : IValueTaskSource<int>
    {
        private readonly UdpReceiver _r;
        private readonly object _gate = new();
        private ManualResetValueTaskSourceCore<int> _core = new() { RunContinuationsAsynchronously = true };
        private int _busy;
        private Memory<UdpDatagram> _batch;
        private CancellationToken _ct;
        private CancellationTokenRegistration _reg;
        private Thread? _thread;
        private bool _requested;
        private bool _stop;

        public AsyncReceive(UdpReceiver receiver) => _r = receiver;

        public ValueTask<int> Start(Memory<UdpDatagram> batch, CancellationToken ct)
        {
            if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
            {
                throw new InvalidOperationException($"{_r}: a ReceiveAsync is already outstanding; one at a time.");
            }

            try
            {
                _r.EnterReceive();
                int n;
                try
                {
                    n = _r.PollLocked(batch.Span);
                }
                finally
                {
                    _r.ExitSection();
                }

                if (n != 0 || batch.IsEmpty)
                {
                    Volatile.Write(ref _busy, 0);
                    return new ValueTask<int>(n);
                }
            }
            catch (Exception e)
            {
                Volatile.Write(ref _busy, 0);
                return ValueTask.FromException<int>(e);
            }

            _core.Reset();
            _batch = batch;
            _ct = ct;
            if (ct.CanBeCanceled)
            {
                _reg = ct.UnsafeRegister(static s => ((AsyncReceive)s!).OnCancel(), this);
            }

            lock (_gate)
            {
                _requested = true;
                if (_thread is null)
                {
                    _thread = new Thread(Run) { IsBackground = true, Name = "netmem-udp-wait " + _r.Name };
                    _thread.Start();
                }
                else
                {
                    Monitor.Pulse(_gate);
                }
            }

            return new ValueTask<int>(this, _core.Version);
        }

        private void OnCancel() => _r._path.Wake();

        /// <summary>Ends the waiter thread after it finished any request (the receiver is disposed: it completes with ObjectDisposedException).</summary>
        public void Stop()
        {
            Thread? t;
            lock (_gate)
            {
                _stop = true;
                Monitor.Pulse(_gate);
                t = _thread;
            }

            if (t is not null && t != Thread.CurrentThread)
            {
                t.Join();
            }
        }

        private void Run()
        {
            while (true)
            {
                lock (_gate)
                {
                    while (!_requested && !_stop)
                    {
                        Monitor.Wait(_gate);
                    }

                    if (!_requested)
                    {
                        return;
                    }

                    _requested = false;
                }

                Complete();
            }
        }

        private void Complete()
        {
            int n = 0;
            Exception? error = null;
            try
            {
                _r.EnterReceive();
                try
                {
                    n = _r.ReceiveLocked(_batch.Span, -1, _ct);
                }
                finally
                {
                    _r.ExitSection();
                }
            }
            catch (Exception e)
            {
                error = e;
            }

            _reg.Dispose();
            _reg = default;
            _batch = default;
            if (error is not null)
            {
                _core.SetException(error);
            }
            else
            {
                _core.SetResult(n);
            }
        }

        public int GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                Volatile.Write(ref _busy, 0);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
