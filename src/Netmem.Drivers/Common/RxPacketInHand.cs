using System.Runtime.CompilerServices;
using Netmem.Devmem;

namespace Netmem.Drivers.Common;

/// <summary>
/// The datagram a queue's poll loop is assembling: the fragments it has taken from one page
/// pool and not yet handed to a socket. Kept with the queue's memory rather than on the stack so
/// that, when a receive step throws, <see cref="NapiPollThread"/> can give them back and no page
/// leaks.
/// </summary>
/// <remarks>
/// Touched only by the queue's poll loop (the pool's consumer), so giving back uses direct
/// recycling. Every fragment of one datagram comes from the same pool: the payload pool with
/// header-data split, the header pool without.
/// </remarks>
internal sealed class RxPacketInHand
{
    private readonly RxFragment[] _fragments = new RxFragment[RxDelivery.MaxFragments];
    private PagePool? _pool;
    private int _count;

    /// <summary>Fragments held now.</summary>
    public int Count => _count;

    /// <summary>True when a fragment can still be added.</summary>
    public bool HasRoom => _count < _fragments.Length;

    /// <summary>The fragments held, in order.</summary>
    public ReadOnlySpan<RxFragment> Fragments => new(_fragments, 0, _count);

    /// <summary>Holds <paramref name="fragment"/>, taken from <paramref name="pool"/>. The caller checked <see cref="HasRoom"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Add(PagePool pool, RxFragment fragment)
    {
        _pool = pool;
        _fragments[_count++] = fragment;
    }

    /// <summary>The socket took the fragments: nothing is held any more.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Handed() => _count = 0;

    /// <summary>Recycles every fragment held to its pool and returns how many there were.</summary>
    public int GiveBack()
    {
        int n = _count;
        _count = 0;
        for (int i = 0; i < n; i++)
        {
            _pool!.RecycleDirect(_fragments[i].Netmem);
            _fragments[i] = default;
        }

        return n;
    }
}
