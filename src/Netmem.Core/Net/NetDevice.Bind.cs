using Netmem.Devmem;
using Netmem.Native;

namespace Netmem.Net;

public sealed partial class NetDevice
{
    /// <summary>The device's IOVA space; dmabuf regions bound to this device are mapped into it.</summary>
    public DmaDevice? DmaDevice { get; set; }

    /// <summary>
    /// Binds <paramref name="region"/> to rx queues <paramref name="queues"/> (netdev netlink
    /// <c>bind-rx</c>): maps it into the device, creates a binding and a devmem provider, and
    /// opens the provider on each queue, restarting it so its payload pool takes the region's
    /// memory. If any queue fails, the queues already done are rolled back to system pages and
    /// the binding is released. Dispose the handle to unbind.
    /// </summary>
    /// <exception cref="NetmemException">The errno of the first check that failed (see <see cref="OpenMemoryProvider"/>).</exception>
    public DmabufBindingHandle BindDmabuf(DmabufRegion region, ReadOnlySpan<int> queues, int maxSegmentSize = 0)
    {
        ArgumentNullException.ThrowIfNull(region);
        if (queues.IsEmpty)
        {
            throw NetmemException.InvalidArgument(Errno.EINVAL, nameof(queues), $"{Name}: bind-rx needs at least one queue");
        }

        DmaDevice dma = DmaDevice ?? throw new NetmemException(Errno.EOPNOTSUPP, $"{Name}: device has no DMA device to map the region into");
        lock (Rtnl)
        {
            if (!IsRegistered)
            {
                throw new NetmemException(Errno.ENODEV, $"{Name}: device is not registered");
            }

            DmabufBinding binding = DmabufBinding.Create(region, dma, maxSegmentSize, this, DmabufDirection.Rx);
            var provider = new DevmemProvider(binding);
            List<int> done = [];
            try
            {
                foreach (int q in queues)
                {
                    OpenMemoryProvider(q, provider);
                    try
                    {
                        binding.AttachQueue(_rxQueues[q]);
                    }
                    catch
                    {
                        CloseMemoryProvider(q, provider);
                        throw;
                    }

                    done.Add(q);
                }
            }
            catch
            {
                for (int i = done.Count - 1; i >= 0; i--)
                {
                    CloseMemoryProvider(done[i], provider);
                    binding.DetachQueue(_rxQueues[done[i]]);
                }

                binding.Put();
                throw;
            }

            return new DmabufBindingHandle(this, binding, provider);
        }
    }

    /// <summary>
    /// The driver's devmem transmit entry (the kernel's <c>netmem_tx</c>), or null when it cannot
    /// transmit from a dmabuf. Set by the driver before it registers the device.
    /// </summary>
    public INetmemTxOps? TxOps { get; set; }

    /// <summary>
    /// Binds <paramref name="region"/> to this device for transmit (netdev netlink
    /// <c>bind-tx</c>): maps it into the device and creates a TX binding whose id a
    /// <see cref="DevmemSocket"/> names in <see cref="DevmemSocket.SendDmabuf(uint, ReadOnlySpan{DmabufIov}, DevmemSendFlags)"/>.
    /// The same region may be bound for receive as well. Dispose the handle to unbind: the id
    /// stops resolving at once, and the binding lingers until the sends in flight have completed.
    /// </summary>
    /// <param name="region">The memory to send from; a device-only region works, as the device reads it by DMA.</param>
    /// <param name="maxSegmentSize">The device's segment limit, 0 for none (see <see cref="DmaDevice.Map"/>).</param>
    /// <returns>The owner handle; its <see cref="DmabufBindingHandle.BindingId"/> is the id to send with.</returns>
    /// <exception cref="NetmemException">
    /// ENODEV: the device is not registered. EOPNOTSUPP: the driver does not support netmem TX
    /// (<see cref="TxOps"/> is null) or the device has no <see cref="DmaDevice"/>.
    /// </exception>
    /// <exception cref="ObjectDisposedException">The region was disposed.</exception>
    public DmabufBindingHandle BindDmabufTx(DmabufRegion region, int maxSegmentSize = 0)
    {
        ArgumentNullException.ThrowIfNull(region);
        lock (Rtnl)
        {
            if (!IsRegistered)
            {
                throw new NetmemException(Errno.ENODEV, $"{Name}: device is not registered");
            }

            if (TxOps is null)
            {
                throw new NetmemException(Errno.EOPNOTSUPP, $"{Name}: Driver does not support netmem TX");
            }

            DmaDevice dma = DmaDevice ?? throw new NetmemException(Errno.EOPNOTSUPP, $"{Name}: device has no DMA device to map the region into");
            DmabufBinding binding = DmabufBinding.Create(region, dma, maxSegmentSize, this, DmabufDirection.Tx);
            return new DmabufBindingHandle(this, binding, provider: null);
        }
    }
}
