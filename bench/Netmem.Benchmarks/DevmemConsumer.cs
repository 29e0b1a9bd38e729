using Netmem.Devmem;

namespace Netmem.Benchmarks;

/// <summary>
/// The devmem receive benchmarks' consumer: takes the records ready on a
/// <see cref="DevmemSocket"/>, checks each is a region fragment of the expected size, and hands
/// the tokens straight back with DONTNEED; counts the times it had to block for more.
/// </summary>
internal sealed class DevmemConsumer
{
    private readonly DmabufCmsg[] _cmsgs = new DmabufCmsg[DevmemSocket.MaxDontNeedTokens];
    private readonly uint[] _tokens = new uint[DevmemSocket.MaxDontNeedTokens];
    private readonly byte[] _linear;

    /// <summary>A consumer whose linear buffer takes <paramref name="linearBytes"/> (records it does not expect).</summary>
    public DevmemConsumer(int linearBytes) => _linear = new byte[linearBytes];

    /// <summary>Times <see cref="Drain"/> found nothing ready and blocked on the socket.</summary>
    public long Waits { get; private set; }

    /// <summary>
    /// Takes what is ready (one <c>Receive</c>), returns the tokens, and adds the payload bytes to
    /// <paramref name="bytes"/>. Returns how many records it took (0: none ready).
    /// </summary>
    /// <exception cref="InvalidOperationException">A record is not a region fragment of <paramref name="size"/> bytes.</exception>
    public int TakeReady(DevmemSocket socket, int size, ref long bytes)
    {
        int n = socket.Receive(_cmsgs, _linear, out _);
        for (int i = 0; i < n; i++)
        {
            ref DmabufCmsg c = ref _cmsgs[i];
            if (c.Type != DevmemCmsgType.Dmabuf || c.FragSize != (uint)size)
            {
                throw new InvalidOperationException($"unexpected record {c}");
            }

            _tokens[i] = c.FragToken;
            bytes += c.FragSize;
        }

        if (n != 0)
        {
            socket.DontNeed(_tokens.AsSpan(0, n));
        }

        return n;
    }

    /// <summary>Blocks up to 100 ms for a record; counted in <see cref="Waits"/>.</summary>
    public bool Wait(DevmemSocket socket)
    {
        Waits++;
        return socket.WaitReadable(100);
    }

    /// <summary>
    /// Receives exactly <paramref name="count"/> records of <paramref name="size"/> bytes; fails
    /// when none arrives for 5 s. Returns the payload bytes.
    /// </summary>
    public long Drain(DevmemSocket socket, int count, int size, string path)
    {
        long bytes = 0;
        int got = 0;
        long idleSince = Environment.TickCount64;
        while (got < count)
        {
            int n = TakeReady(socket, size, ref bytes);
            if (n == 0)
            {
                if (!Wait(socket) && Environment.TickCount64 - idleSince > 5000)
                {
                    throw new InvalidOperationException($"{path} path stalled: {got} of {count} received in 5 s");
                }

                continue;
            }

            got += n;
            idleSince = Environment.TickCount64;
        }

        return bytes;
    }
}
