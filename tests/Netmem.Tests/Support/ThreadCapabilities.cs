using System.Runtime.InteropServices;
using Netmem.Native;

namespace Netmem.Tests.Support;

/// <summary>
/// Drops capabilities from the calling thread's effective set (capset(2) acts on one thread):
/// a test runs the refused call on a dedicated thread, and threads that thread starts inherit
/// the reduced set, while the rest of the test process keeps its privileges.
/// </summary>
internal static partial class ThreadCapabilities
{
    public const int NetAdmin = 12;
    public const int NetRaw = 13;
    public const int SysAdmin = 21;
    public const int Bpf = 39;

    /// <summary>Clears <paramref name="capabilities"/> from this thread's effective set.</summary>
    public static unsafe void DropEffective(params int[] capabilities)
    {
        CapHeader header = new() { Version = 0x20080522, Pid = 0 };
        CapData* data = stackalloc CapData[2];
        if (Capget(&header, data) != 0)
        {
            throw new NativeException("capget", Marshal.GetLastPInvokeError());
        }

        foreach (int c in capabilities)
        {
            data[c / 32].Effective &= ~(1u << (c % 32));
        }

        if (Capset(&header, data) != 0)
        {
            throw new NativeException("capset", Marshal.GetLastPInvokeError());
        }
    }

    [LibraryImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static unsafe partial int Capget(CapHeader* header, CapData* data);

    [LibraryImport("libc", EntryPoint = "capset", SetLastError = true)]
    private static unsafe partial int Capset(CapHeader* header, CapData* data);

    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData
    {
        public uint Effective;
        public uint Permitted;
        public uint Inheritable;
    }
}
