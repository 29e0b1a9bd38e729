namespace Netmem.Tool.Relay;

/// <summary>
/// The thread that runs a <see cref="DevmemRelay"/>: polls it, and when there is nothing to do
/// waits for the socket to become readable or, when a send waits for room, for completions.
/// On <see cref="Stop"/> it flushes the relay (every send completed, every token back) before
/// it ends. No exception escapes the thread: one is kept in <see cref="Fault"/> (the run reports it)
/// and ends the loop.
/// </summary>
internal sealed class RelayLoop
{
    private readonly DevmemRelay _relay;
    private readonly Thread _thread;
    private volatile bool _stop;

    public RelayLoop(DevmemRelay relay)
    {
        _relay = relay;
        _thread = new Thread(Loop) { IsBackground = true, Name = "netmem-relay" };
        _thread.Start();
    }

    /// <summary>The exception that ended the loop, or null.</summary>
    public Exception? Fault { get; private set; }

    /// <summary>True until the thread ended.</summary>
    public bool IsRunning => _thread.IsAlive;

    /// <summary>False when the final flush timed out with sends or tokens still held.</summary>
    public bool Flushed { get; private set; }

    /// <summary>Stops polling, flushes (bounded by <paramref name="flushTimeout"/>) and waits for the thread.</summary>
    public void Stop(TimeSpan flushTimeout)
    {
        FlushTimeout = flushTimeout;
        _stop = true;
        _thread.Join();
    }

    private TimeSpan FlushTimeout { get; set; } = TimeSpan.FromSeconds(5);

    private void Loop()
    {
        try
        {
            while (!_stop)
            {
                if (_relay.Poll() != 0)
                {
                    continue;
                }

                if (_relay.IsBlocked || _relay.TokensHeld != 0)
                {
                    _relay.Socket.WaitCompletions(1);
                }
                else
                {
                    _relay.Socket.WaitReadable(1);
                }
            }

            Flushed = _relay.Flush(FlushTimeout);
        }
        catch (Exception e)
        {
            // Reported in the run's failures; the relay holds what it held, and teardown returns it.
            Fault = e;
        }
    }
}
