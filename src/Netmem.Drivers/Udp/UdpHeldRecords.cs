using System.Runtime.CompilerServices;
using Netmem.Rings;

namespace Netmem.Drivers.Udp;

/// <summary>
/// The records a <see cref="UdpReceiver"/>'s caller holds: one slot per token, naming the netmem
/// the record carries. A return claims its slot with one compare-and-swap (so a record returned
/// twice, or after the receiver took everything back at dispose, is caught), then frees the
/// token: onto a plain stack when the returner is inside the consumer section, else onto a
/// lock-free ring the consumer drains in bulk.
/// </summary>
internal sealed class UdpHeldRecords : IDisposable
{
    /// <summary>Netmem value per token; 0 when the token is free.</summary>
    private readonly nuint[] _held;

    /// <summary>Free tokens, touched only inside the consumer section.</summary>
    private readonly int[] _free;

    /// <summary>Tokens freed by returns outside the consumer section.</summary>
    private readonly PtrRing _remote;

    /// <summary>Scratch for draining <see cref="_remote"/>.</summary>
    private readonly nuint[] _drain = new nuint[256];

    private int _freeCount;

    public UdpHeldRecords(int capacity)
    {
        Capacity = capacity;
        _held = new nuint[capacity];
        _free = new int[capacity];
        _remote = new PtrRing(capacity);
        for (int i = 0; i < capacity; i++)
        {
            _free[i] = capacity - 1 - i;
        }

        _freeCount = capacity;
    }

    public int Capacity { get; }

    /// <summary>Records held now (exact when no return is under way).</summary>
    public int Held => Math.Max(0, Capacity - _freeCount - _remote.Count);

    /// <summary>Tokens free for the consumer: drains returns made elsewhere first. Consumer section only.</summary>
    public int Available()
    {
        if (_freeCount < _drain.Length && !_remote.IsEmpty)
        {
            int got = _remote.DequeueBurst(_drain);
            for (int i = 0; i < got; i++)
            {
                _free[_freeCount++] = (int)_drain[i] - 1;
            }
        }

        return _freeCount;
    }

    /// <summary>Takes a token for <paramref name="netmem"/>; the caller checked <see cref="Available"/>. Consumer section only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Take(NetmemRef netmem)
    {
        int token = _free[--_freeCount];
        Volatile.Write(ref _held[token], netmem.Value);
        return token;
    }

    /// <summary>Claims the slot of a returned record; false when the record is not held (returned already, or taken back at dispose).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryRelease(int token, NetmemRef netmem) =>
        (uint)token < (uint)_held.Length && !netmem.IsNull
        && Interlocked.CompareExchange(ref _held[token], 0, netmem.Value) == netmem.Value;

    /// <summary>Frees a claimed token. Consumer section only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void FreeLocal(int token) => _free[_freeCount++] = token;

    /// <summary>Frees a claimed token from outside the consumer section.</summary>
    public void FreeRemote(int token)
    {
        // Never full: it holds at most every token once.
        _remote.TryEnqueue((nuint)(token + 1));
    }

    /// <summary>Takes every held netmem back (the receiver is closing); later returns of those records are refused. Consumer section only.</summary>
    public int ReclaimAll(PagePool pool)
    {
        int n = 0;
        for (int t = 0; t < _held.Length; t++)
        {
            nuint v = Volatile.Read(ref _held[t]);
            if (v != 0 && Interlocked.CompareExchange(ref _held[t], 0, v) == v)
            {
                pool.RecycleDirect(NetmemRef.FromValue(v));
                _free[_freeCount++] = t;
                n++;
            }
        }

        return n;
    }

    public void Dispose() => _remote.Dispose();
}
