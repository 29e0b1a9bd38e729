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

            DmabufBinding binding = DmabufBinding.Create(region, dma, maxSegmentSize, Ifindex);
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
}
