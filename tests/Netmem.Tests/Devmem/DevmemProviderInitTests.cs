using Netmem.Devmem;
using Netmem.Native;
using Netmem.Net;
using Netmem.Providers;
using Xunit;

namespace Netmem.Tests.Devmem;

/// <summary>Each configuration the devmem provider refuses, with its own errno, and what a refusal leaves behind.</summary>
[Collection(DevmemCollection.Name)]
public sealed class DevmemProviderInitTests
{
    [Fact]
    public void A_provider_without_a_binding_is_refused_with_EINVAL()
    {
        var queue = new RxQueue(0) { MemoryProvider = new DevmemProvider(null) };
        int toggle = MemoryProviderToggle.Count;

        NetmemException e = Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams
        {
            Napi = new NapiContext(),
            Queue = queue,
            Flags = DevmemSetup.PayloadFlags,
        }));

        Assert.Equal(Errno.EINVAL, e.Errno);
        Assert.Contains("no dmabuf binding", e.Message, StringComparison.Ordinal);
        Assert.Equal(toggle, MemoryProviderToggle.Count);
    }

    [Fact]
    public void A_pool_without_DmaMap_is_refused_with_EOPNOTSUPP()
    {
        using var s = new DevmemSetup();

        NetmemException e = Assert.Throws<NetmemException>(() => s.NewPool(PagePoolFlags.AllowUnreadableNetmem));

        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Contains("DmaMap", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pool_with_DmaSyncDev_is_refused_with_EOPNOTSUPP()
    {
        using var s = new DevmemSetup();

        NetmemException e = Assert.Throws<NetmemException>(
            () => s.NewPool(DevmemSetup.PayloadFlags | PagePoolFlags.DmaSyncDev, maxLen: 4096));

        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Contains("DmaSyncDev", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pool_of_order_above_zero_is_refused_with_E2BIG()
    {
        using var s = new DevmemSetup();

        NetmemException e = Assert.Throws<NetmemException>(() => s.NewPool(order: 1));

        Assert.Equal(Errno.E2BIG, e.Errno);
        Assert.Contains("order 1", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Refusals_come_in_the_kernels_order_dma_sync_before_order()
    {
        using var s = new DevmemSetup();

        NetmemException e = Assert.Throws<NetmemException>(
            () => s.NewPool(DevmemSetup.PayloadFlags | PagePoolFlags.DmaSyncDev, order: 2, maxLen: 4096));

        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
    }

    [Fact]
    public void A_refused_pool_takes_no_binding_reference_and_leaves_the_toggle_alone()
    {
        using var s = new DevmemSetup();
        int refs = s.Binding.RefCount;
        int toggle = MemoryProviderToggle.Count;

        Assert.Throws<NetmemException>(() => s.NewPool(order: 1));

        Assert.Equal(refs, s.Binding.RefCount);
        Assert.Equal(toggle, MemoryProviderToggle.Count);
        Assert.Equal(0, s.Binding.OutstandingNetIovs);
    }

    [Fact]
    public void A_pool_on_a_binding_already_released_is_refused_with_ENODEV()
    {
        using var s = new DevmemSetup();
        s.Binding.Put();

        NetmemException e = Assert.Throws<NetmemException>(() => s.NewPool());

        Assert.Equal(Errno.ENODEV, e.Errno);
        Assert.True(s.Binding.IsFreed);
    }

    [Fact]
    public void Init_takes_a_binding_reference_and_destroy_drops_it()
    {
        using var s = new DevmemSetup();
        Assert.Equal(1, s.Binding.RefCount);

        PagePool pool = s.NewPool();
        Assert.Equal(2, s.Binding.RefCount);
        Assert.Same(s.Provider, pool.MemoryProvider);

        pool.Dispose();
        Assert.True(pool.IsFreed);
        Assert.Equal(1, s.Binding.RefCount);
    }

    [Fact]
    public void Describe_names_the_binding()
    {
        using var s = new DevmemSetup();

        Assert.Equal("dmabuf binding " + s.Binding.Id, s.Provider.Describe());
        Assert.Equal("dmabuf binding (none)", new DevmemProvider(null).Describe());
    }
}
