using System.Runtime.InteropServices;
using Xunit;

namespace Netmem.Tests.Memory;

public sealed unsafe class NetmemRefTests
{
    [Fact]
    public void Default_handle_is_null_of_kind_null()
    {
        NetmemRef r = default;
        Assert.True(r.IsNull);
        Assert.False(r.IsPage);
        Assert.False(r.IsNetIov);
        Assert.Equal(NetmemKind.Null, r.Kind);
        Assert.Equal(NetmemRef.Null, r);
        Assert.Equal(0u, (uint)r.Value);
        Assert.Equal("netmem(null)", r.ToString());
    }

    [Fact]
    public void Null_handle_refuses_to_read_its_descriptor()
    {
        Assert.Throws<InvalidOperationException>(() => NetmemRef.Null.PoolId);
        Assert.Throws<InvalidOperationException>(() => NetmemRef.Null.PageAddress);
    }

    [Fact]
    public void Page_handle_has_kind_page_and_no_tag_bit()
    {
        using var arena = new PageArena(2 << 20);
        NetmemRef r = arena.Alloc(0);
        Assert.True(r.IsPage);
        Assert.False(r.IsNetIov);
        Assert.Equal(NetmemKind.Page, r.Kind);
        Assert.Equal(0u, (uint)(r.Value & NetmemRef.NetIovTag));
        Assert.Equal(4096, r.Size);
        Assert.Equal(0, r.PageOrder);
        arena.Free(r);
    }

    [Fact]
    public void NetIov_handle_sets_tag_bit_and_masks_it_off_for_the_header()
    {
        NetIovDesc* d = (NetIovDesc*)NativeMemory.AlignedAlloc(64, 64);
        try
        {
            *d = default;
            d->Common.Magic = NetmemDesc.NetIovMagic;
            NetmemRef r = NetmemRef.FromNetIov(d);
            Assert.Equal((nuint)d | 1, r.Value);
            Assert.True(r.IsNetIov);
            Assert.False(r.IsPage);
            Assert.Equal(NetmemKind.NetIov, r.Kind);
            Assert.Equal((nuint)d, (nuint)r.Header);
            Assert.Equal(NetmemDesc.NetIovMagic, r.Header->Magic);
            Assert.Equal(4096, r.Size);
        }
        finally
        {
            NativeMemory.AlignedFree(d);
        }
    }

    [Fact]
    public void NetIov_handle_has_no_cpu_address()
    {
        NetIovDesc* d = (NetIovDesc*)NativeMemory.AlignedAlloc(64, 64);
        try
        {
            *d = default;
            NetmemRef r = NetmemRef.FromNetIov(d);
            InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => r.PageAddress);
            Assert.Contains("net_iov", e.Message);
            Assert.Throws<InvalidOperationException>(() => r.GetPageSpan());
        }
        finally
        {
            NativeMemory.AlignedFree(d);
        }
    }

    [Fact]
    public void Handles_are_equal_exactly_when_their_values_are()
    {
        using var arena = new PageArena(2 << 20);
        NetmemRef a = arena.Alloc(0);
        NetmemRef b = arena.Alloc(0);
        NetmemRef a2 = NetmemRef.FromValue(a.Value);

        Assert.True(a == a2);
        Assert.False(a != a2);
        Assert.True(a.Equals(a2));
        Assert.True(a.Equals((object)a2));
        Assert.Equal(a.GetHashCode(), a2.GetHashCode());
        Assert.True(a != b);
        Assert.False(a.Equals(b));
        Assert.False(a.Equals((object)a.Value));
        Assert.NotEqual(NetmemRef.FromValue(a.Value | NetmemRef.NetIovTag), a);
        arena.Free(a);
        arena.Free(b);
    }

    [Fact]
    public void Page_ToString_names_kind_descriptor_data_order_pool_and_count()
    {
        using var arena = new PageArena(2 << 20);
        var pool = new PagePool(new PagePoolParams { Napi = new NapiContext(), Arena = arena });
        NetmemRef r = pool.AllocNetmem();
        string s = r.ToString();
        Assert.StartsWith($"page@0x{r.Value:x}(", s);
        Assert.Contains($"data 0x{r.PageAddress:x}", s);
        Assert.Contains("order 0", s);
        Assert.Contains($"pool {pool.Id}", s);
        Assert.Contains("pp_ref 1", s);
        pool.RecycleDirect(r);
        pool.Dispose();
    }

    [Fact]
    public void NetIov_ToString_names_binding_index_offset_and_dma()
    {
        NetIovDesc* d = (NetIovDesc*)NativeMemory.AlignedAlloc(64, 64);
        try
        {
            *d = default;
            d->BindingId = 7;
            d->Index = 3;
            d->RegionOffset = 0x3000;
            d->Common.DmaAddr = 0xabc000;
            string s = NetmemRef.FromNetIov(d).ToString();
            Assert.StartsWith($"net_iov@0x{(nuint)d:x}(", s);
            Assert.Contains("binding 7", s);
            Assert.Contains("index 3", s);
            Assert.Contains("offset 0x3000", s);
            Assert.Contains("dma 0xabc000", s);
        }
        finally
        {
            NativeMemory.AlignedFree(d);
        }
    }
}
