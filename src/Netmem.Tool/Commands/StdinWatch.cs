namespace Netmem.Tool.Commands;

/// <summary>Ends a long-running command at end of stdin, so a parent process can stop it by closing the pipe.</summary>
internal static class StdinWatch
{
    /// <summary>Cancels <paramref name="stop"/> when stdin reaches its end; not for a terminal or /dev/null.</summary>
    public static void CancelAtEndOfInput(CancellationTokenSource stop)
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
                // The command already ended.
            }
        })
        {
            IsBackground = true,
            Name = "stdin-watch",
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
