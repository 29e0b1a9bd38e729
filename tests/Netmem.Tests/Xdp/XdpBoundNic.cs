using Netmem.Devmem;
using Netmem.Drivers.Xdp;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>
/// An XdpNic on a veth's device end with a fresh memfd region bound to its queue 0, and the
/// check that tearing it down leaves nothing behind. Disposing releases the binding, the driver
/// and the region, in that order.
/// </summary>
internal sealed class XdpBoundNic : IDisposable
{
    public XdpBoundNic(VethPair veth, string regionName, long regionBytes, XdpNicOptions? options = null)
    {
        Region = DmabufRegion.CreateMemfd(regionName, regionBytes);
        try
        {
            Nic = new XdpNic(veth.DeviceNamespace, veth.Name, options);
            Handle = Nic.Device.BindDmabuf(Region, [0]);
        }
        catch
        {
            Nic?.Dispose();
            Region.Dispose();
            throw;
        }

        Pools = [.. Nic.Device.PagePools];
    }

    public DmabufRegion Region { get; }

    public XdpNic Nic { get; }

    public DmabufBindingHandle Handle { get; }

    public DmabufBinding Binding => Handle.Binding;

    /// <summary>The bound queue's page pools, taken at bind time.</summary>
    public List<PagePool> Pools { get; }

    /// <summary>
    /// Unbinds and disposes the driver, then checks that no page of the bound queue's pools is in
    /// flight and that the binding is freed with its genpool whole.
    /// </summary>
    public void TearDownAndAssertNothingLeft()
    {
        Handle.Dispose();
        Nic.Dispose();
        Assert.True(XdpTestKit.WaitUntil(() => Pools.All(p => p.Inflight == 0)), string.Join(", ", Pools.Select(p => $"{p.Name} inflight {p.Inflight}")));
        Assert.True(Binding.IsFreed);
        Assert.Equal(Binding.Size, Binding.Avail);
        Assert.Equal(0, Binding.OutstandingNetIovs);
    }

    public void Dispose()
    {
        Handle.Dispose();
        Nic.Dispose();
        Region.Dispose();
    }
}
