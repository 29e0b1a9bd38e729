using System.Text;
using Netmem.Devmem;
using Netmem.Native;
using Xunit;

namespace Netmem.Tests.Devmem;

/// <summary>Regions (memfd, imported, device-only), the device's IOVA space, and reading a net_iov's payload.</summary>
[Collection(DevmemCollection.Name)]
public sealed class DmabufRegionTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(-4096)]
    [InlineData(5000)]
    public void A_size_that_is_not_a_positive_multiple_of_4_KiB_is_refused(long size)
    {
        Assert.Contains("multiple of 4096", Assert.Throws<ArgumentException>(() => DmabufRegion.CreateMemfd("bad", size)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => DmabufRegion.CreateDeviceOnly(size));
    }

    [Fact]
    public void A_memfd_region_is_cpu_mapped_and_has_a_shareable_fd()
    {
        using var r = DmabufRegion.CreateMemfd("shared", 8192);

        Assert.True(r.IsCpuMapped);
        Assert.True(r.Fd >= 0);
        Assert.Equal("shared", r.Name);
        Assert.Equal(8192, r.Size);
        Assert.Equal(8192, Sys.FileSize(r.Fd));
    }

    [Fact]
    public void Opening_the_memfd_through_proc_maps_the_same_bytes()
    {
        using var r = DmabufRegion.CreateMemfd("proc-share", 8192);
        Encoding.ASCII.GetBytes("hello devmem").CopyTo(r.GetSpan(0, 12));
        int fd = Sys.Open($"/proc/self/fd/{r.Fd}", Sys.O_RDWR);
        try
        {
            using var other = DmabufRegion.Import(fd);

            Assert.Equal(8192, other.Size);
            Assert.Equal("hello devmem", Encoding.ASCII.GetString(other.GetSpan(0, 12)));
            other.GetSpan(4096, 3).Fill(0x7f);
            Assert.Equal([0x7f, 0x7f, 0x7f], r.GetSpan(4096, 3).ToArray());
        }
        finally
        {
            Sys.Close(fd);
        }
    }

    [Fact]
    public void Import_keeps_its_own_descriptor_and_can_map_a_prefix()
    {
        using var r = DmabufRegion.CreateMemfd("prefix", 16384);
        r.GetSpan(4095, 1)[0] = 42;

        using var imported = DmabufRegion.Import(r.Fd, 4096);

        Assert.NotEqual(r.Fd, imported.Fd);
        Assert.Equal(4096, imported.Size);
        Assert.Equal(42, imported.GetSpan(4095, 1)[0]);
    }

    [Fact]
    public void Import_refuses_a_size_larger_than_the_file()
    {
        using var r = DmabufRegion.CreateMemfd("small", 4096);

        Assert.Contains("holds only 4096", Assert.Throws<ArgumentException>(() => DmabufRegion.Import(r.Fd, 8192)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetSpan_checks_bounds()
    {
        using var r = DmabufRegion.CreateMemfd("bounds", 4096);

        Assert.Equal(4096, r.GetSpan(0, 4096).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => r.GetSpan(1, 4096));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.GetSpan(-1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.GetSpan(0, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => r.GetSpan(long.MaxValue, 1));
    }

    [Fact]
    public void A_dma_write_into_a_net_iov_is_read_back_through_its_region()
    {
        using var s = new DevmemSetup();
        PagePool pool = s.NewPool();
        NetmemRef n = pool.AllocNetmem();
        byte[] payload = Encoding.ASCII.GetBytes("payload straight into the region");

        s.Device.DmaWrite(n.DmaAddress + 100, payload);

        Assert.Equal(payload, s.Region.ReadNetIov(n, 100, payload.Length).ToArray());
        Assert.Equal(payload, s.Region.GetSpan((long)n.RegionOffset + 100, payload.Length).ToArray());
        Assert.Same(s.Region, DmabufBinding.FromNetIov(n)!.Region);

        pool.RecycleDirect(n);
        pool.Dispose();
    }

    [Fact]
    public void ReadNetIov_stays_inside_the_net_iov_and_its_region()
    {
        using var s = new DevmemSetup(netIovs: 4);
        using var other = DmabufRegion.CreateMemfd("other", 4096);
        NetmemRef n = s.Binding.AllocNetIov();

        Assert.Equal(4096, s.Region.ReadNetIov(n, 0, 4096).Length);
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Region.ReadNetIov(n, 1, 4096));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Region.ReadNetIov(n, -1, 2));
        Assert.Contains("not memory of region 'other'", Assert.Throws<ArgumentException>(() => other.ReadNetIov(n, 0, 1)).Message, StringComparison.Ordinal);

        s.Binding.FreeNetIov(n);
    }

    [Fact]
    public void A_dma_access_outside_every_mapping_faults_with_EFAULT_naming_the_address()
    {
        using var s = new DevmemSetup(netIovs: 4);
        DmaSegment seg = Assert.Single(s.Binding.Segments);

        NetmemException below = Assert.Throws<NetmemException>(() => s.Device.DmaWrite(0xdead000, [1]));
        NetmemException past = Assert.Throws<NetmemException>(() => s.Device.DmaWrite(seg.DmaEnd - 2, [1, 2, 3]));
        NetmemException gap = Assert.Throws<NetmemException>(() => s.Device.DmaRead(seg.DmaEnd, new byte[1]));

        Assert.Equal(Errno.EFAULT, below.Errno);
        Assert.Contains("0xdead000", below.Message, StringComparison.Ordinal);
        Assert.Equal(Errno.EFAULT, past.Errno);
        Assert.Contains("past the end of its segment", past.Message, StringComparison.Ordinal);
        Assert.Equal(Errno.EFAULT, gap.Errno);
    }

    [Fact]
    public void A_dma_write_after_unmap_faults()
    {
        using var r = DmabufRegion.CreateMemfd("unmapped", 8192);
        var dev = new DmaDevice("nic");
        DmaMapping m = dev.Map(r);
        ulong iova = m.Segments[0].DmaAddress;
        dev.DmaWrite(iova, [9]);

        dev.Unmap(m);

        Assert.False(m.IsMapped);
        Assert.Equal(Errno.EFAULT, Assert.Throws<NetmemException>(() => dev.DmaWrite(iova, [9])).Errno);
        Assert.Throws<InvalidOperationException>(() => dev.Unmap(m));
        Assert.Equal(9, r.GetSpan(0, 1)[0]);
    }

    [Fact]
    public void Iovas_start_at_the_device_base_are_4_KiB_aligned_and_never_overlap()
    {
        using var a = DmabufRegion.CreateMemfd("a", 12288);
        using var b = DmabufRegion.CreateMemfd("b", 4096);
        var dev = new DmaDevice("nic");

        DmaMapping ma = dev.Map(a, maxSegmentSize: 4096);
        DmaMapping mb = dev.Map(b);

        Assert.Equal(DmaDevice.DefaultIovaBase, ma.Segments[0].DmaAddress);
        DmaSegment[] all = [.. ma.Segments, .. mb.Segments];
        Assert.All(all, x => Assert.Equal(0UL, x.DmaAddress % 4096));
        for (int i = 1; i < all.Length; i++)
        {
            Assert.True(all[i].DmaAddress >= all[i - 1].DmaEnd);
        }

        dev.Unmap(ma);
        dev.Unmap(mb);
    }

    [Fact]
    public void A_device_only_region_cannot_be_read_but_the_device_can_write_it()
    {
        using var s = new DevmemSetup(netIovs: 8, deviceOnly: true);
        PagePool pool = s.NewPool();
        NetmemRef n = pool.AllocNetmem();
        byte[] payload = [1, 2, 3, 4];

        s.Device.DmaWrite(n.DmaAddress + 8, payload);

        Assert.False(s.Region.IsCpuMapped);
        Assert.Equal(-1, s.Region.Fd);
        Assert.Contains("device-only", Assert.Throws<InvalidOperationException>(() => s.Region.ReadNetIov(n, 8, 4)).Message, StringComparison.Ordinal);
        Assert.Contains("unreadable", Assert.Throws<InvalidOperationException>(() => s.Region.GetSpan(0, 4)).Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => n.GetPageSpan());
        var back = new byte[4];
        s.Device.DmaRead(n.DmaAddress + 8, back);
        Assert.Equal(payload, back);

        pool.RecycleDirect(n);
        pool.Dispose();
    }

    [Fact]
    public void A_disposed_region_stays_alive_for_its_device_until_the_binding_unmaps_it()
    {
        var s = new DevmemSetup(netIovs: 4);
        NetmemRef n = s.Binding.AllocNetIov();

        s.Region.Dispose();

        Assert.Throws<ObjectDisposedException>(() => s.Region.GetSpan(0, 1));
        s.Device.DmaWrite(n.DmaAddress, [5]); // the mapping keeps the memory
        s.Binding.FreeNetIov(n);
        s.Binding.Put();
        Assert.True(s.Binding.IsFreed);
        Assert.Throws<ObjectDisposedException>(() => s.Device.Map(s.Region));
    }
}
