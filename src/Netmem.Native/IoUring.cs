using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Netmem.Native;

/// <summary>
/// One io_uring instance: the file descriptor from <c>io_uring_setup</c>, its mapped submission
/// and completion rings and its SQE array. Single producer, single consumer: the caller
/// serialises every method except <see cref="Dispose"/>'s precondition (nothing else running).
/// </summary>
/// <remarks>
/// Memory ordering follows the kernel's documentation of the rings: the kernel publishes CQEs
/// with a release store of the CQ tail, so the consumer reads the tail with acquire
/// (<see cref="CqReady"/>) before reading the entries, and frees the slots with a release store
/// of the CQ head (<see cref="AdvanceCq"/>) after it read them. SQEs and the SQ array are written
/// first and then published with a release store of the SQ tail (<see cref="Flush"/>); the SQ
/// head, written by the kernel, is read with acquire to know which slots are free again.
/// </remarks>
internal sealed unsafe partial class IoUring : IDisposable
{
    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    private readonly int _fd;
    private readonly nint _sqRing;
    private readonly nuint _sqRingSize;
    private readonly nint _cqRing;
    private readonly nuint _cqRingSize;
    private readonly IoUringSqe* _sqes;
    private readonly nuint _sqesSize;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint* _sqArray;
    private readonly uint _sqMask;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint* _cqOverflow;
    private readonly IoUringCqe* _cqes;
    private readonly uint _cqMask;

    /// <summary>SQEs handed out by <see cref="TryGetSqe"/> (ours, not yet published when ahead of the ring's tail).</summary>
    private uint _sqeTail;

    /// <summary>The SQ tail published to the kernel.</summary>
    private uint _published;

    /// <summary>Published SQEs that no <c>io_uring_enter</c> has submitted yet.</summary>
    private uint _unsubmitted;

    private int _disposed;

    private IoUring(int fd, in IoUringParams p)
    {
        _fd = fd;
        Features = p.Features;
        SqEntries = p.SqEntries;
        CqEntries = p.CqEntries;
        _sqRingSize = p.SqOff.Array + p.SqEntries * sizeof(uint);
        _cqRingSize = p.CqOff.Cqes + p.CqEntries * (uint)sizeof(IoUringCqe);
        bool single = (p.Features & IoUringAbi.FeatSingleMmap) != 0;
        if (single)
        {
            _sqRingSize = _cqRingSize = Math.Max(_sqRingSize, _cqRingSize);
        }

        _sqRing = Sys.Mmap(0, _sqRingSize, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED | Sys.MAP_POPULATE, fd, IoUringAbi.OffSqRing);
        try
        {
            _cqRing = single ? _sqRing : Sys.Mmap(0, _cqRingSize, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED | Sys.MAP_POPULATE, fd, IoUringAbi.OffCqRing);
            _sqesSize = p.SqEntries * (uint)sizeof(IoUringSqe);
            _sqes = (IoUringSqe*)Sys.Mmap(0, _sqesSize, Sys.PROT_READ | Sys.PROT_WRITE, Sys.MAP_SHARED | Sys.MAP_POPULATE, fd, IoUringAbi.OffSqes);
        }
        catch
        {
            Sys.Munmap(_sqRing, _sqRingSize);
            if (_cqRing != 0 && _cqRing != _sqRing)
            {
                Sys.Munmap(_cqRing, _cqRingSize);
            }

            throw;
        }

        byte* sq = (byte*)_sqRing;
        _sqHead = (uint*)(sq + p.SqOff.Head);
        _sqTail = (uint*)(sq + p.SqOff.Tail);
        _sqMask = *(uint*)(sq + p.SqOff.RingMask);
        _sqArray = (uint*)(sq + p.SqOff.Array);
        byte* cq = (byte*)_cqRing;
        _cqHead = (uint*)(cq + p.CqOff.Head);
        _cqTail = (uint*)(cq + p.CqOff.Tail);
        _cqMask = *(uint*)(cq + p.CqOff.RingMask);
        _cqOverflow = (uint*)(cq + p.CqOff.Overflow);
        _cqes = (IoUringCqe*)(cq + p.CqOff.Cqes);
        _sqeTail = _published = *_sqTail;
    }

    /// <summary>The ring's file descriptor (pollable: readable while CQEs wait).</summary>
    public int Fd => _fd;

    /// <summary>IORING_FEAT_* the kernel reported.</summary>
    public uint Features { get; }

    public uint SqEntries { get; }

    public uint CqEntries { get; }

    /// <summary>CQEs the kernel could not post because the CQ ring was full (kept on its overflow list since IORING_FEAT_NODROP).</summary>
    public uint CqOverflow => Volatile.Read(ref *_cqOverflow);

    /// <summary>
    /// Sets up a ring with <paramref name="sqEntries"/> submission slots and
    /// <paramref name="cqEntries"/> completion slots.
    /// </summary>
    /// <param name="sqEntries">Submission entries (a power of two; the kernel rounds up).</param>
    /// <param name="cqEntries">Completion entries, at least <paramref name="sqEntries"/>.</param>
    /// <param name="simulatedErrno">A test's stand-in for a kernel that refuses io_uring: non-zero fails setup with it.</param>
    /// <exception cref="NativeException">io_uring_setup or a ring mapping failed (ENOSYS: no io_uring; EPERM: disabled or filtered).</exception>
    public static IoUring Create(uint sqEntries, uint cqEntries, int simulatedErrno = 0)
    {
        if (simulatedErrno != 0)
        {
            throw new NativeException("io_uring_setup", simulatedErrno);
        }

        IoUringParams p = default;
        p.Flags = IoUringAbi.SetupCqSize | IoUringAbi.SetupClamp | IoUringAbi.SetupSubmitAll;
        p.CqEntries = cqEntries;
        long fd = Syscall(IoUringAbi.SysSetup, sqEntries, (long)&p, 0, 0, 0, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errno.EINVAL)
            {
                // Kernels before 5.19 refuse IORING_SETUP_SUBMIT_ALL: too old for multishot recvmsg anyway.
                throw new NativeException("io_uring_setup", errno, "the kernel refused the ring's setup flags (io_uring older than 5.19)");
            }

            throw new NativeException("io_uring_setup", errno);
        }

        try
        {
            return new IoUring((int)fd, p);
        }
        catch
        {
            _ = Libc.Close((int)fd);
            throw;
        }
    }

    /// <summary>
    /// The next free SQE, zeroed, or null when every slot is published and not yet consumed by
    /// the kernel (submit and retry).
    /// </summary>
    public IoUringSqe* TryGetSqe()
    {
        uint head = Volatile.Read(ref *_sqHead);
        if (_sqeTail - head >= SqEntries)
        {
            return null;
        }

        uint idx = _sqeTail & _sqMask;
        IoUringSqe* sqe = _sqes + idx;
        *sqe = default;
        _sqArray[idx] = idx;
        _sqeTail++;
        return sqe;
    }

    /// <summary>Publishes the SQEs filled since the last flush (release store of the SQ tail).</summary>
    public void Flush()
    {
        if (_sqeTail != _published)
        {
            _unsubmitted += _sqeTail - _published;
            _published = _sqeTail;
            Volatile.Write(ref *_sqTail, _published);
        }
    }

    /// <summary>
    /// Submits what is published and optionally waits. Returns the kernel's result (SQEs
    /// consumed) or a negative errno (EINTR, EAGAIN, EBUSY, ETIME are the caller's to retry).
    /// </summary>
    /// <param name="minComplete">Wait until this many CQEs are ready (0: do not wait).</param>
    /// <param name="timeoutMs">With <paramref name="minComplete"/> above 0: the longest wait, -1 for none.</param>
    /// <param name="getEvents">Enter with IORING_ENTER_GETEVENTS even without waiting, so completions queued as task work are posted.</param>
    public int SubmitAndWait(uint minComplete, int timeoutMs = -1, bool getEvents = false)
    {
        Flush();
        uint flags = minComplete > 0 || getEvents ? IoUringAbi.EnterGetEvents : 0;
        long r;
        if (minComplete > 0 && timeoutMs >= 0 && (Features & IoUringAbi.FeatExtArg) != 0)
        {
            KernelTimespec ts = new() { Sec = timeoutMs / 1000, Nsec = (timeoutMs % 1000) * 1_000_000L };
            GetEventsArg arg = new() { Ts = (ulong)&ts };
            r = Syscall(IoUringAbi.SysEnter, _fd, _unsubmitted, minComplete, flags | IoUringAbi.EnterExtArg, (long)&arg, sizeof(GetEventsArg));
        }
        else
        {
            r = Syscall(IoUringAbi.SysEnter, _fd, _unsubmitted, minComplete, flags, 0, 0);
        }

        if (r < 0)
        {
            return -Marshal.GetLastPInvokeError();
        }

        _unsubmitted -= (uint)Math.Min(r, _unsubmitted);
        return (int)r;
    }

    /// <summary>True when published SQEs wait for an <c>io_uring_enter</c>.</summary>
    public bool HasUnsubmitted => _unsubmitted != 0;

    /// <summary>CQEs ready to read (acquire load of the CQ tail, so their contents are visible).</summary>
    public uint CqReady
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(ref *_cqTail) - *_cqHead;
    }

    /// <summary>The CQE <paramref name="index"/> entries past the CQ head (index below <see cref="CqReady"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public IoUringCqe* PeekCqe(uint index) => _cqes + ((*_cqHead + index) & _cqMask);

    /// <summary>Frees <paramref name="count"/> read CQEs for the kernel (release store of the CQ head).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AdvanceCq(uint count) => Volatile.Write(ref *_cqHead, *_cqHead + count);

    /// <summary>
    /// IORING_REGISTER_PBUF_RING: registers a provided-buffer ring of <paramref name="entries"/>
    /// (a power of two) at <paramref name="ring"/> (page aligned) as group <paramref name="bgid"/>.
    /// </summary>
    /// <exception cref="NativeException">The kernel refused (EINVAL on kernels before 5.19).</exception>
    public void RegisterBufRing(void* ring, uint entries, ushort bgid)
    {
        IoUringBufReg reg = default;
        reg.RingAddr = (ulong)ring;
        reg.RingEntries = entries;
        reg.Bgid = bgid;
        if (Syscall(IoUringAbi.SysRegister, _fd, IoUringAbi.RegisterPbufRing, (long)&reg, 1, 0, 0) < 0)
        {
            throw new NativeException("io_uring_register(IORING_REGISTER_PBUF_RING)", Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>IORING_UNREGISTER_PBUF_RING for group <paramref name="bgid"/>; false when the kernel refused.</summary>
    public bool UnregisterBufRing(ushort bgid)
    {
        IoUringBufReg reg = default;
        reg.Bgid = bgid;
        return Syscall(IoUringAbi.SysRegister, _fd, IoUringAbi.UnregisterPbufRing, (long)&reg, 1, 0, 0) >= 0;
    }

    /// <summary>Unmaps the rings and closes the descriptor; the kernel cancels what is still pending.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _ = Libc.Munmap((nint)_sqes, _sqesSize);
        if (_cqRing != _sqRing)
        {
            _ = Libc.Munmap(_cqRing, _cqRingSize);
        }

        _ = Libc.Munmap(_sqRing, _sqRingSize);
        _ = Libc.Close(_fd);
    }

    /// <summary><c>struct __kernel_timespec</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct KernelTimespec
    {
        public long Sec;
        public long Nsec;
    }

    /// <summary><c>struct io_uring_getevents_arg</c>.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private struct GetEventsArg
    {
        public ulong Sigmask;
        public uint SigmaskSz;
        public uint MinWaitUsec;
        public ulong Ts;
    }
}
