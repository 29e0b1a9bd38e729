using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Netmem.Devmem;

/// <summary>Asynchronous receive: <see cref="ReceiveAsync"/> and its pooled completion source.</summary>
public sealed partial class DevmemSocket
{
    /// <summary>The socket's one completion source, made on the first receive that has to wait.</summary>
    private AsyncReceive? _asyncReceive;

    /// <summary>
    /// The armed receive, or null. Set under the socket lock by <see cref="ReceiveAsync"/> when it
    /// found nothing queued; read by <see cref="TryDeliver"/> after it queued (outside the lock),
    /// so a delivery either sees the armed receive or was seen by it.
    /// </summary>
    private volatile AsyncReceive? _armedReceive;

    /// <summary>
    /// Receives queued fragments like <see cref="Receive"/>, waiting without a thread while none
    /// are queued. Completes with the number of records filled (at least one, unless another
    /// receive on this socket took the fragments first, when it is 0). The linear bytes used are
    /// the end of the last <see cref="DevmemCmsgType.Linear"/> record
    /// (<see cref="DmabufCmsg.LinearOffset"/> + <see cref="DmabufCmsg.FragSize"/>).
    /// </summary>
    /// <param name="cmsgs">Where the records go; must stay untouched until the receive completes.</param>
    /// <param name="linear">Where fragments in readable memory are copied.</param>
    /// <param name="cancellationToken">Cancels the wait: the receive then fails with <see cref="OperationCanceledException"/> and takes nothing.</param>
    /// <returns>
    /// A value task that completes synchronously when fragments are already queued. Awaiting it
    /// allocates nothing in steady state: the socket reuses one completion source, and a
    /// cancellable wait registers with <see cref="CancellationToken.UnsafeRegister(Action{object?}, object?)"/>
    /// and a cached callback. Await each result once, as with any <see cref="ValueTask{TResult}"/>.
    /// </returns>
    /// <exception cref="ObjectDisposedException">The socket is closed, or was closed during the wait.</exception>
    /// <exception cref="InvalidOperationException">Another <see cref="ReceiveAsync"/> on this socket is still waiting or was not awaited yet.</exception>
    /// <exception cref="ArgumentException"><paramref name="linear"/> cannot hold the next readable fragment (as <see cref="Receive"/>).</exception>
    public ValueTask<int> ReceiveAsync(Memory<DmabufCmsg> cmsgs, Memory<byte> linear, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        AsyncReceive? receive = null;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            if (_count == 0 && !cmsgs.IsEmpty)
            {
                receive = _asyncReceive ??= new AsyncReceive(this);
                if (!receive.TryArm(cmsgs, linear))
                {
                    ThrowReceivePending();
                }

                _armedReceive = receive;
            }
        }

        if (receive is null)
        {
            return new ValueTask<int>(Receive(cmsgs.Span, linear.Span, out _));
        }

        return receive.Wait(cancellationToken);
    }

    /// <summary>Completes the armed receive, if any: fragments were queued or the socket closed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void WakeAsyncReceive()
    {
        AsyncReceive? armed = _armedReceive;
        if (armed is not null)
        {
            armed.Signal(null);
        }
    }

    private static void ThrowReceivePending() =>
        throw new InvalidOperationException("Another ReceiveAsync on this socket is still waiting; await it before starting the next.");

    /// <summary>
    /// The completion source of one socket's waiting receive, reused for every wait.
    /// </summary>
    /// <remarks>
    /// States: idle, armed (between <see cref="TryArm"/> and the first of delivery, close or
    /// cancellation), signalled. The one that moves armed to signalled (an <c>Interlocked</c>
    /// exchange on <see cref="_state"/>) completes the core; the others do nothing. The receive
    /// itself runs in <see cref="GetResult"/>, on the awaiting thread, so a driver's poll thread
    /// that delivered only signals and never copies for the consumer. Continuations run
    /// asynchronously for the same reason.
    /// </remarks>
    private sealed class AsyncReceive : IValueTaskSource<int>
    {
        private const int Idle = 0;
        private const int Armed = 1;
        private const int Signalled = 2;

        private static readonly Action<object?> s_onCancel = static state => ((AsyncReceive)state!).Signal(s_cancelled);

        /// <summary>Marker passed to <see cref="Signal"/> by the cancellation callback.</summary>
        private static readonly object s_cancelled = new();

        private readonly DevmemSocket _socket;
        private ManualResetValueTaskSourceCore<int> _core;
        private Memory<DmabufCmsg> _cmsgs;
        private Memory<byte> _linear;
        private CancellationToken _cancellationToken;
        private CancellationTokenRegistration _registration;
        private int _state;

        public AsyncReceive(DevmemSocket socket)
        {
            _socket = socket;
            _core.RunContinuationsAsynchronously = true;
        }

        /// <summary>
        /// Takes the caller's buffers for the next wait. False while the previous wait has not
        /// been awaited. Called under the socket lock.
        /// </summary>
        public bool TryArm(Memory<DmabufCmsg> cmsgs, Memory<byte> linear)
        {
            if (Volatile.Read(ref _state) != Idle)
            {
                return false;
            }

            _cmsgs = cmsgs;
            _linear = linear;
            Volatile.Write(ref _state, Armed);
            return true;
        }

        /// <summary>Registers for cancellation (outside the socket lock) and hands out the task.</summary>
        public ValueTask<int> Wait(CancellationToken cancellationToken)
        {
            short version = _core.Version;
            if (cancellationToken.CanBeCanceled)
            {
                _cancellationToken = cancellationToken;
                _registration = cancellationToken.UnsafeRegister(s_onCancel, this);
            }

            return new ValueTask<int>(this, version);
        }

        /// <summary>Delivery or close (<paramref name="reason"/> null) or cancellation: completes the wait once.</summary>
        public void Signal(object? reason)
        {
            if (Interlocked.CompareExchange(ref _state, Signalled, Armed) != Armed)
            {
                return;
            }

            _socket._armedReceive = null;
            if (ReferenceEquals(reason, s_cancelled))
            {
                _core.SetException(new OperationCanceledException(_cancellationToken));
            }
            else
            {
                _core.SetResult(0);
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);

        /// <summary>Receives into the caller's buffers (or rethrows the cancellation), then readies the source for the next wait.</summary>
        public int GetResult(short token)
        {
            try
            {
                _core.GetResult(token);
                return _socket.Receive(_cmsgs.Span, _linear.Span, out _);
            }
            finally
            {
                // Dispose waits for a running cancellation callback, so none can signal the next wait.
                _registration.Dispose();
                _registration = default;
                _cancellationToken = default;
                _cmsgs = default;
                _linear = default;
                _core.Reset();
                Volatile.Write(ref _state, Idle);
            }
        }
    }
}
