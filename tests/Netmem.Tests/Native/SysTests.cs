using System.Runtime.InteropServices;
using Netmem.Native;
using Xunit;

namespace Netmem.Tests.Interop;

public sealed unsafe class SysTests
{
    [Fact]
    public void Close_of_a_bad_descriptor_names_close_and_EBADF()
    {
        NativeException e = Assert.Throws<NativeException>(() => Sys.Close(-1));
        Assert.Equal("close", e.Call);
        Assert.Equal(Errno.EBADF, e.ErrorNumber);
        Assert.StartsWith("close failed: errno 9 (EBADF)", e.Message);
    }

    [Fact]
    public void Munmap_of_an_unaligned_address_names_munmap_and_EINVAL()
    {
        NativeException e = Assert.Throws<NativeException>(() => Sys.Munmap(1, 4096));
        Assert.Equal("munmap", e.Call);
        Assert.Equal(Errno.EINVAL, e.ErrorNumber);
        Assert.Contains("EINVAL", e.Message);
    }

    [Fact]
    public void Open_of_a_missing_path_names_open_with_the_path_and_ENOENT()
    {
        string path = "/nonexistent-netmem-" + Guid.NewGuid().ToString("N");
        NativeException e = Assert.Throws<NativeException>(() => Sys.Open(path, Sys.O_RDONLY));
        Assert.Equal($"open({path})", e.Call);
        Assert.Equal(Errno.ENOENT, e.ErrorNumber);
        Assert.Contains("ENOENT", e.Message);
    }

    [Fact]
    public void Mmap_with_a_bad_descriptor_names_mmap_and_EBADF()
    {
        NativeException e = Assert.Throws<NativeException>(() => Sys.Mmap(0, 4096, Sys.PROT_READ, Sys.MAP_SHARED, -1, 0));
        Assert.Equal("mmap", e.Call);
        Assert.Equal(Errno.EBADF, e.ErrorNumber);
    }

    [Fact]
    public void Memfd_truncate_and_two_shared_mappings_see_the_same_bytes()
    {
        int fd = Sys.MemfdCreate("netmem-test", Sys.MFD_CLOEXEC);
        Assert.True(fd >= 0);
        try
        {
            Sys.Ftruncate(fd, 8192);
            Assert.Equal(8192L, Sys.FileSize(fd));

            nint a = Sys.Mmap(0, 8192, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED, fd, 0);
            nint b = Sys.Mmap(0, 8192, Sys.PROT_READ, Sys.MAP_SHARED, fd, 0);
            try
            {
                Assert.NotEqual(a, b);
                var wa = new Span<byte>((void*)a, 8192);
                var rb = new ReadOnlySpan<byte>((void*)b, 8192);
                Assert.True(rb.IndexOfAnyExcept((byte)0) < 0); // fresh memfd reads as zeros
                for (int i = 0; i < wa.Length; i++)
                {
                    wa[i] = (byte)(i * 7);
                }

                Assert.True(wa.SequenceEqual(rb));
                Assert.Equal(unchecked((byte)(8191 * 7)), rb[8191]);
            }
            finally
            {
                Sys.Munmap(a, 8192);
                Sys.Munmap(b, 8192);
            }

            // A third mapping after the first two are gone still sees the data: it lives in the file.
            nint c = Sys.Mmap(0, 4096, Sys.PROT_READ, Sys.MAP_SHARED, fd, 4096);
            Assert.Equal(unchecked((byte)(4096 * 7)), *(byte*)c);
            Sys.Munmap(c, 4096);
        }
        finally
        {
            Sys.Close(fd);
        }

        Assert.Equal(Errno.EBADF, Assert.Throws<NativeException>(() => Sys.Close(fd)).ErrorNumber);
    }

    [Fact]
    public void Sched_getcpu_returns_a_cpu_in_the_thread_affinity_set()
    {
        int cpu = Sys.SchedGetcpu();
        Assert.InRange(cpu, 0, 1023);
        int[] allowed = Sys.SchedGetaffinity();
        Assert.NotEmpty(allowed);

        // The thread may migrate between the two calls, but only inside its affinity set.
        Assert.Contains(cpu, allowed);
    }

    [Fact]
    public void Sched_setaffinity_pins_the_thread_to_one_allowed_cpu()
    {
        // Pin a dedicated thread, so the test runner's threads keep their affinity; its own
        // affinity is restored before it ends anyway.
        int[] before = [];
        int[] pinned = [];
        int ranOn = -1;
        int[] restored = [];
        Exception? failure = null;
        var t = new Thread(() =>
        {
            try
            {
                before = Sys.SchedGetaffinity();
                int target = before[^1];
                Sys.SchedSetaffinity(target);
                pinned = Sys.SchedGetaffinity();
                ranOn = Sys.SchedGetcpu();
                RestoreAffinity(before);
                restored = Sys.SchedGetaffinity();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        t.Start();
        Assert.True(t.Join(TimeSpan.FromSeconds(10)));
        Assert.Null(failure);
        Assert.Equal([before[^1]], pinned);
        Assert.Equal(before[^1], ranOn);
        Assert.Equal(before, restored);
    }

    [Fact]
    public void Sched_setaffinity_to_an_out_of_range_cpu_throws_before_the_call()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Sys.SchedSetaffinity(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Sys.SchedSetaffinity(1024));
    }

    [Fact]
    public void Errno_names_are_symbolic()
    {
        Assert.Equal("EBADF", Errno.Name(Errno.EBADF));
        Assert.Equal("E2BIG", Errno.Name(Errno.E2BIG));
        Assert.Equal("EOPNOTSUPP", Errno.Name(Errno.EOPNOTSUPP));
        Assert.Equal("E200", Errno.Name(200));
    }

    /// <summary>Sets the calling thread's affinity back to a set (Sys only pins to one CPU).</summary>
    private static void RestoreAffinity(int[] cpus)
    {
        ulong* mask = stackalloc ulong[16];
        new Span<ulong>(mask, 16).Clear();
        foreach (int c in cpus)
        {
            mask[c / 64] |= 1UL << (c % 64);
        }

        Assert.Equal(0, sched_setaffinity(0, 16 * sizeof(ulong), mask));
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int sched_setaffinity(int pid, nuint cpusetsize, ulong* mask);
}
