using Netmem.Native;
using Netmem.Net;

namespace Netmem.Tests.Net;

/// <summary>
/// A driver's queue management ops for tests: each queue memory is a readable header pool and a
/// payload pool (with <see cref="PagePoolFlags.AllowUnreadableNetmem"/> unless told otherwise)
/// from a private arena. Every call is written to <see cref="Log"/> ("alloc q0 -> m1",
/// "stop q0 -> m0", "start q0 m1", "free m0"), and <see cref="Fail"/> can refuse any of them
/// by its label, so the order and the rollback of a restart can be checked.
/// </summary>
internal sealed class RecordingQueueOps : IQueueManagementOps
{
    private readonly PageArena _arena;
    private readonly Dictionary<int, Mem> _running = [];
    private int _serial;

    public RecordingQueueOps(PageArena arena) => _arena = arena;

    /// <summary>Calls in order, failed ones suffixed " failed".</summary>
    public List<string> Log { get; } = [];

    /// <summary>Given a call's label ("alloc q0", "stop q0", "start q0 m2", "free m1"), true to make it throw EIO.</summary>
    public Func<string, bool>? Fail { get; set; }

    /// <summary>Whether new payload pools may take the queue's provider.</summary>
    public bool PayloadAllowsUnreadable { get; set; } = true;

    /// <summary>Every memory ever allocated, by serial.</summary>
    public List<Mem> Allocated { get; } = [];

    /// <summary>The memory queue <paramref name="queue"/> runs on, or null when stopped.</summary>
    public Mem? Running(int queue) => _running.GetValueOrDefault(queue);

    /// <summary>Allocates and starts memory for every queue, as a driver's open does, then clears the log.</summary>
    public void StartAll(NetDevice device)
    {
        for (int q = 0; q < device.RxQueues.Count; q++)
        {
            Start(device, MemAlloc(device, q), q);
        }

        Log.Clear();
    }

    /// <summary>Stops every queue and frees its memory, as a driver's close does.</summary>
    public void StopAll(NetDevice device)
    {
        for (int q = 0; q < device.RxQueues.Count; q++)
        {
            if (_running.ContainsKey(q))
            {
                MemFree(device, Stop(device, q));
            }
        }
    }

    public object MemAlloc(NetDevice device, int queueIndex)
    {
        Check($"alloc q{queueIndex}");
        RxQueue rxq = device.RxQueues[queueIndex];
        int serial = ++_serial;
        var header = new PagePool(new PagePoolParams
        {
            Name = $"{device.Name}-q{queueIndex}-m{serial}-hdr",
            Queue = rxq,
            Ifindex = device.Ifindex,
            Flags = PagePoolFlags.DmaMap,
            Arena = _arena,
        });
        var payload = new PagePool(new PagePoolParams
        {
            Name = $"{device.Name}-q{queueIndex}-m{serial}-payload",
            Queue = rxq,
            Ifindex = device.Ifindex,
            Flags = PagePoolFlags.DmaMap | (PayloadAllowsUnreadable ? PagePoolFlags.AllowUnreadableNetmem : PagePoolFlags.None),
            Arena = _arena,
        });
        var mem = new Mem(serial, queueIndex, header, payload);
        Allocated.Add(mem);
        Log.Add($"alloc q{queueIndex} -> {mem}");
        return mem;
    }

    public void MemFree(NetDevice device, object queueMemory)
    {
        var mem = (Mem)queueMemory;
        Check($"free {mem}");
        mem.Header.Dispose();
        mem.Payload.Dispose();
        mem.IsFreed = true;
        Log.Add($"free {mem}");
    }

    public void Start(NetDevice device, object queueMemory, int queueIndex)
    {
        var mem = (Mem)queueMemory;
        Check($"start q{queueIndex} {mem}");
        _running[queueIndex] = mem;
        Log.Add($"start q{queueIndex} {mem}");
    }

    public object Stop(NetDevice device, int queueIndex)
    {
        Check($"stop q{queueIndex}");
        Mem mem = _running[queueIndex];
        _running.Remove(queueIndex);
        Log.Add($"stop q{queueIndex} -> {mem}");
        return mem;
    }

    private void Check(string label)
    {
        if (Fail?.Invoke(label) == true)
        {
            Log.Add(label + " failed");
            throw new NetmemException(Errno.EIO, $"injected failure: {label}");
        }
    }

    /// <summary>One queue memory: its serial ("m1") and its pools.</summary>
    internal sealed class Mem(int serial, int queue, PagePool header, PagePool payload)
    {
        public int Serial { get; } = serial;

        public int Queue { get; } = queue;

        public PagePool Header { get; } = header;

        public PagePool Payload { get; } = payload;

        public bool IsFreed { get; set; }

        public override string ToString() => "m" + Serial.ToString(System.Globalization.CultureInfo.InvariantCulture);
    }
}
