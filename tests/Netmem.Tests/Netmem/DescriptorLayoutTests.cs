using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Xunit;

namespace Netmem.Tests.Memory;

public sealed unsafe class DescriptorLayoutTests
{
    [Fact]
    public void Page_descriptor_is_at_most_one_cache_line()
    {
        Assert.True(Unsafe.SizeOf<PageDesc>() <= 64, $"PageDesc is {Unsafe.SizeOf<PageDesc>()} bytes");
        Assert.Equal(64, sizeof(PageDesc));
    }

    [Fact]
    public void NetIov_descriptor_is_at_most_one_cache_line()
    {
        Assert.True(Unsafe.SizeOf<NetIovDesc>() <= 64, $"NetIovDesc is {Unsafe.SizeOf<NetIovDesc>()} bytes");
        Assert.Equal(64, sizeof(NetIovDesc));
    }

    [Theory]
    [InlineData(nameof(NetmemDescHeader.Magic), 0)]
    [InlineData(nameof(NetmemDescHeader.LastPoolId), 4)]
    [InlineData(nameof(NetmemDescHeader.DmaAddr), 8)]
    [InlineData(nameof(NetmemDescHeader.PpRefCount), 16)]
    [InlineData(nameof(NetmemDescHeader.State), 24)]
    [InlineData(nameof(NetmemDescHeader.PoolState), 24)]
    [InlineData(nameof(NetmemDescHeader.PoolId), 28)]
    public void Shared_header_field_sits_at_the_same_offset_in_page_and_net_iov(string field, int expected)
    {
        int inHeader = (int)Marshal.OffsetOf<NetmemDescHeader>(field);
        int headerInPage = (int)Marshal.OffsetOf<PageDesc>(nameof(PageDesc.Common));
        int headerInNiov = (int)Marshal.OffsetOf<NetIovDesc>(nameof(NetIovDesc.Common));

        Assert.Equal(expected, inHeader);
        Assert.Equal(0, headerInPage);
        Assert.Equal(0, headerInNiov);

        // The same field read through each concrete struct lands at the same byte.
        PageDesc page = default;
        NetIovDesc niov = default;
        int inPage = (int)((byte*)FieldAddress(&page.Common, field) - (byte*)&page);
        int inNiov = (int)((byte*)FieldAddress(&niov.Common, field) - (byte*)&niov);
        Assert.Equal(expected, inPage);
        Assert.Equal(expected, inNiov);
    }

    [Fact]
    public void Page_reference_count_sits_at_the_same_offset_in_both_descriptors()
    {
        Assert.Equal(Marshal.OffsetOf<PageDesc>(nameof(PageDesc.PageRef)), Marshal.OffsetOf<NetIovDesc>(nameof(NetIovDesc.PageRef)));
    }

    [Fact]
    public void Header_is_32_bytes_so_kind_specific_fields_start_after_it()
    {
        Assert.Equal(32, sizeof(NetmemDescHeader));
        Assert.Equal(32, (int)Marshal.OffsetOf<PageDesc>(nameof(PageDesc.Data)));
        Assert.Equal(32, (int)Marshal.OffsetOf<NetIovDesc>(nameof(NetIovDesc.OwnerId)));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Descriptors_handed_out_by_the_arena_are_64_byte_aligned(int order)
    {
        using var arena = new PageArena(4 << 20);
        Span<NetmemRef> pages = stackalloc NetmemRef[32];
        int got = arena.AllocBulk(order, pages);
        Assert.Equal(32, got);
        foreach (NetmemRef r in pages)
        {
            Assert.Equal(0u, (uint)(r.Value % 64));
            Assert.False(r.IsNetIov);
        }

        foreach (NetmemRef r in pages)
        {
            arena.Free(r);
        }
    }

    [Fact]
    public void Descriptors_handed_out_by_a_pool_are_64_byte_aligned()
    {
        using var arena = new PageArena(4 << 20);
        var pool = new PagePool(new PagePoolParams { Napi = new NapiContext(), Arena = arena });
        var refs = new NetmemRef[100];
        Assert.Equal(100, pool.AllocBulk(refs));
        Assert.All(refs, r => Assert.Equal(0u, (uint)(r.Value % 64)));
        pool.PutBulk(refs);
        pool.Dispose();
        Assert.True(pool.IsFreed);
    }

    private static void* FieldAddress(NetmemDescHeader* h, string field) => field switch
    {
        nameof(NetmemDescHeader.Magic) => &h->Magic,
        nameof(NetmemDescHeader.PoolId) => &h->PoolId,
        nameof(NetmemDescHeader.DmaAddr) => &h->DmaAddr,
        nameof(NetmemDescHeader.PpRefCount) => &h->PpRefCount,
        nameof(NetmemDescHeader.State) => &h->State,
        nameof(NetmemDescHeader.PoolState) => &h->PoolState,
        nameof(NetmemDescHeader.LastPoolId) => &h->LastPoolId,
        _ => throw new ArgumentException(field),
    };

    [Fact]
    public void PoolState_is_the_state_in_its_low_half_and_the_pool_id_in_its_high_half()
    {
        NetmemDescHeader h = default;
        h.State = (int)NetmemState.InFlight;
        h.PoolId = 0x1234;

        Assert.Equal(NetmemDescHeader.MakePoolState(0x1234, NetmemState.InFlight), h.PoolState);
        Assert.Equal(0x0000_1234_0000_0002L, h.PoolState);
    }
}
