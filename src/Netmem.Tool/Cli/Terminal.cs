using System.Runtime.InteropServices;

namespace Netmem.Tool.Cli;

/// <summary>
/// Where standard output goes, as live views need to know it: a terminal or not, and whether
/// this process is the terminal's foreground job right now. A job started with <c>&amp;</c>
/// shares the terminal but must not move its cursor or rewrite lines there: its output would
/// mix with the foreground job's.
/// </summary>
internal sealed partial class Terminal
{
    /// <summary>Output that is not a terminal (a file, a pipe, a test's writer).</summary>
    public static readonly Terminal None = new(isTerminal: false, foreground: static () => false, width: static () => 0);

    private readonly Func<bool> _foreground;
    private readonly Func<int> _width;

    /// <summary>A terminal as tests describe it.</summary>
    public Terminal(bool isTerminal, Func<bool> foreground, Func<int> width)
    {
        IsTerminal = isTerminal;
        _foreground = foreground;
        _width = width;
    }

    /// <summary>True when standard output is a terminal.</summary>
    public bool IsTerminal { get; }

    /// <summary>True when output is a terminal and this process's group is its foreground group (checked on each call: a job can be moved with fg and bg).</summary>
    public bool IsForeground => IsTerminal && _foreground();

    /// <summary>Columns of the terminal; 0 when unknown or not a terminal.</summary>
    public int Width => IsTerminal ? _width() : 0;

    /// <summary>The process's standard output.</summary>
    public static Terminal ForStandardOutput()
    {
        if (Console.IsOutputRedirected || !OperatingSystem.IsLinux())
        {
            return None;
        }

        return new Terminal(
            isTerminal: true,
            foreground: static () => TcGetPgrp(1) is int group && group > 0 && group == GetPgrp(),
            width: static () =>
            {
                try
                {
                    return Console.WindowWidth;
                }
                catch (IOException)
                {
                    return 0;
                }
            });
    }

    [LibraryImport("libc", EntryPoint = "tcgetpgrp")]
    private static partial int TcGetPgrp(int fd);

    [LibraryImport("libc", EntryPoint = "getpgrp")]
    private static partial int GetPgrp();
}
