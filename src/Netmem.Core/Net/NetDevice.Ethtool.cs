using System.Globalization;
using Netmem.Native;

namespace Netmem.Net;

/// <summary>
/// The device configuration the kernel changes through ethtool: ring parameters (header-data
/// split and its threshold, <c>ethnl_set_rings</c>) and the rx channel count
/// (<c>ethnl_set_channels</c>). Each refuses, with the kernel's errno and extack text, a change
/// that would pull a bound queue away from its memory provider. Messages carry the kernel's
/// extack text after the device name, as the other configuration errors do.
/// </summary>
public sealed partial class NetDevice
{
    /// <summary>The driver's channel operation, or null when it cannot change its rx channel count.</summary>
    public IRxChannelOps? ChannelOps { get; set; }

    /// <summary>
    /// The fewest rx channels that keep every bound queue active (the kernel's
    /// <c>dev_get_min_mp_channel_count</c>): the highest index of an active queue with a memory
    /// provider plus one, or 0 when no queue has one.
    /// </summary>
    public int MinMemoryProviderChannelCount
    {
        get
        {
            for (int i = RxChannelCount - 1; i >= 0; i--)
            {
                if (_rxQueues[i].MemoryProvider is not null)
                {
                    return i + 1;
                }
            }

            return 0;
        }
    }

    /// <summary>
    /// Changes header-data split and/or its threshold (ethtool <c>-G tcp-data-split</c>,
    /// <c>hds-thresh</c>); a null argument keeps the current value. The new values apply to queue
    /// memory allocated from now on (the next queue restart).
    /// </summary>
    /// <remarks>
    /// While any queue has a memory provider, the result must keep header-data split enabled with
    /// a zero threshold, as binding required: otherwise the next restart of a bound queue would put
    /// payloads into readable header pages instead of the provider's memory. Checked in the
    /// kernel's order, tcp-data-split first.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="hdsThreshold"/> is negative.</exception>
    /// <exception cref="NetmemException">
    /// EINVAL "can't disable tcp-data-split while device has memory provider enabled", or EINVAL
    /// "can't set non-zero hds_thresh while device is memory provider enabled". Nothing changes.
    /// </exception>
    public void SetRingParams(TcpDataSplit? tcpDataSplit = null, int? hdsThreshold = null)
    {
        if (hdsThreshold is < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(hdsThreshold), hdsThreshold, "The header-data split threshold is a byte count, 0 or more.");
        }

        lock (Rtnl)
        {
            TcpDataSplit split = tcpDataSplit ?? _tcpDataSplit;
            int threshold = hdsThreshold ?? _hdsThreshold;
            if (MinMemoryProviderChannelCount != 0)
            {
                if (split != TcpDataSplit.Enabled)
                {
                    throw new NetmemException(Errno.EINVAL, $"{Name}: can't disable tcp-data-split while device has memory provider enabled");
                }

                if (threshold != 0)
                {
                    throw new NetmemException(Errno.EINVAL, $"{Name}: can't set non-zero hds_thresh while device is memory provider enabled");
                }
            }

            _tcpDataSplit = split;
            _hdsThreshold = threshold;
        }
    }

    /// <summary>
    /// Sets the number of active rx queues (ethtool <c>-L rx N</c>): queues below
    /// <paramref name="count"/> run, the others are stopped and their memory freed. The driver
    /// activates or deactivates the queues through <see cref="ChannelOps"/>; the checks are here,
    /// in the kernel's order.
    /// </summary>
    /// <exception cref="NetmemException">
    /// EOPNOTSUPP: the driver has no channel operation. EINVAL "requested channel count exceeds
    /// maximum": more than <see cref="MaxRxChannels"/>. EINVAL "requested channel counts would
    /// result in no RX or TX channel being configured": zero or less. EINVAL "requested channel
    /// counts are too low for existing memory provider setting (N)": a queue with a memory
    /// provider would be deactivated (N is <see cref="MinMemoryProviderChannelCount"/>). On any
    /// refusal, and when the driver fails, the count stays as it was.
    /// </exception>
    public void SetRxChannels(int count)
    {
        lock (Rtnl)
        {
            IRxChannelOps ops = ChannelOps
                ?? throw new NetmemException(Errno.EOPNOTSUPP, $"{Name}: driver does not support changing its channel count");
            if (count > _rxQueues.Length)
            {
                throw new NetmemException(Errno.EINVAL, $"{Name}: requested channel count exceeds maximum");
            }

            if (count < 1)
            {
                throw new NetmemException(Errno.EINVAL, $"{Name}: requested channel counts would result in no RX or TX channel being configured");
            }

            int minForProviders = MinMemoryProviderChannelCount;
            if (count < minForProviders)
            {
                throw new NetmemException(Errno.EINVAL, string.Create(CultureInfo.InvariantCulture,
                    $"{Name}: requested channel counts are too low for existing memory provider setting ({minForProviders})"));
            }

            int old = _realNumRxQueues;
            if (count == old)
            {
                return;
            }

            // Shrinking: no queue at or past the new count may be bound or restarted from here on,
            // so the count drops before the driver parks them; growing: it rises once they run.
            if (count < old)
            {
                Volatile.Write(ref _realNumRxQueues, count);
                try
                {
                    ops.SetRxChannels(this, old, count);
                }
                catch
                {
                    Volatile.Write(ref _realNumRxQueues, old);
                    throw;
                }
            }
            else
            {
                ops.SetRxChannels(this, old, count);
                Volatile.Write(ref _realNumRxQueues, count);
            }
        }
    }
}
