using Netmem.Devmem;
using Netmem.Drivers.SimNic;
using Netmem.Native;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Docs;

/// <summary>The exception conventions of docs/errors.md, one representative of each row.</summary>
public sealed class ErrorConventionTests
{
    [Fact]
    public void A_refused_page_pool_parameter_is_a_NetmemException_with_the_kernel_errno_and_an_inner_ArgumentException()
    {
        var e = Assert.Throws<NetmemException>(() => new PagePool(new PagePoolParams { PoolSize = PagePool.MaxPoolSize + 1 }));

        Assert.Equal(Errno.E2BIG, e.Errno);
        Assert.Equal($"page pool size {PagePool.MaxPoolSize + 1} is out of range 0..{PagePool.MaxPoolSize}", e.Reason);
        Assert.EndsWith("(E2BIG)", e.Message, StringComparison.Ordinal);
        var inner = Assert.IsType<ArgumentException>(e.InnerException);
        Assert.Equal("parameters", inner.ParamName);
        Assert.Equal("parameters", e.ParamName);
    }

    [Fact]
    public void Binding_no_queue_is_an_argument_refusal_and_binding_a_missing_queue_is_ERANGE()
    {
        using var region = DmabufRegion.CreateMemfd("error-convention", 1 << 20);
        using var nic = new SimNic("errconv", new SimNicOptions { RxQueues = 2 });

        var none = Assert.Throws<NetmemException>(() => nic.Device.BindDmabuf(region, []));
        Assert.Equal(Errno.EINVAL, none.Errno);
        Assert.Equal("queues", none.ParamName);

        var range = Assert.Throws<NetmemException>(() => nic.Device.BindDmabuf(region, [5]));
        Assert.Equal(Errno.ERANGE, range.Errno);
        Assert.Contains("rx queue index 5 out of range", range.Reason, StringComparison.Ordinal);
        Assert.All(nic.Device.RxQueues, q => Assert.Null(q.MemoryProvider));
    }

    [Fact]
    public void A_state_refusal_carries_no_parameter()
    {
        using var region = DmabufRegion.CreateMemfd("error-convention-state", 1 << 20);
        using var nic = new SimNic("errstate", new SimNicOptions { RxQueues = 2 });
        using DmabufBindingHandle first = nic.Device.BindDmabuf(region, [1]);

        var e = Assert.Throws<NetmemException>(() => nic.Device.BindDmabuf(region, [1]));

        Assert.Equal(Errno.EEXIST, e.Errno);
        Assert.Null(e.ParamName);
        Assert.Null(e.InnerException);
    }

    [Fact]
    public void A_closed_socket_and_a_disposed_region_raise_ObjectDisposedException()
    {
        var region = DmabufRegion.CreateMemfd("error-convention-disposed", 1 << 20);
        var socket = new DevmemSocket(FlowKey.Udp(9300));
        region.Dispose();
        socket.Dispose();

        Assert.Throws<ObjectDisposedException>(() => region.GetSpan(0, 1));
        Assert.Throws<ObjectDisposedException>(() => socket.Receive(new DmabufCmsg[1], new byte[16], out _));
    }

    [Fact]
    public void A_plain_argument_error_without_an_errno_is_an_ArgumentException()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new DevmemSocket(FlowKey.Udp(9301), maxOutstanding: 0));

        Assert.Equal("maxOutstanding", e.ParamName);
    }
}
