using Netmem.Providers;

namespace Netmem.Net;

/// <summary>
/// One receive queue of a device: its index, the memory provider installed on it (the kernel's
/// <c>mp_params</c>) and its NAPI consumer.
/// </summary>
public sealed class RxQueue
{
    /// <summary>Creates queue <paramref name="index"/>, stand-alone until a <see cref="NetDevice"/> adopts it, with no provider.</summary>
    /// <param name="index">The queue's index on its device; 0 or more.</param>
    /// <param name="napi">The context that polls it; null creates one named <c>rxq&lt;index&gt;</c>.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is negative.</exception>
    public RxQueue(int index, NapiContext? napi = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        Index = index;
        Napi = napi ?? new NapiContext("rxq" + index.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Queue index on its device.</summary>
    public int Index { get; }

    /// <summary>The NAPI context that polls this queue.</summary>
    public NapiContext Napi { get; }

    /// <summary>The device this queue belongs to, or null for a stand-alone queue.</summary>
    public NetDevice? Device { get; internal set; }

    /// <summary>The provider bound to this queue, or null for system pages.</summary>
    public IMemoryProvider? MemoryProvider { get; internal set; }

    /// <summary>Names the queue for logs: <c>device/rxqN</c>, or <c>rxqN</c> for a stand-alone queue.</summary>
    public override string ToString() => Device is null ? $"rxq{Index}" : $"{Device.Name}/rxq{Index}";
}
