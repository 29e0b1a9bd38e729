using Netmem.Drivers.Xdp;
using Netmem.Native;
using Netmem.Tests.Support;
using Xunit;

namespace Netmem.Tests.Xdp;

/// <summary>The errors a user of XdpNic and the bpf/AF_XDP layer meets, each with its errno and a message that says why.</summary>
public sealed class XdpErrorTests(ITestOutputHelper output)
{
    [Fact]
    public void A_program_the_verifier_refuses_surfaces_its_log_in_the_exception()
    {
        Requires.AfXdp();

        // Returns r0 without ever setting it.
        BpfInstruction[] bad = new BpfProgramBuilder().Exit().ToArray();
        var e = Assert.Throws<BpfLoadException>(() => Bpf.ProgLoad(Bpf.ProgTypeXdp, bad, "netmem_bad"));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.EACCES, e.ErrorNumber);
        Assert.Contains("R0 !read_ok", e.VerifierLog, StringComparison.Ordinal);
        Assert.Contains("verifier log:", e.Message, StringComparison.Ordinal);
        Assert.Equal("netmem_bad", e.Program);
    }

    [Fact]
    public void The_redirect_program_is_six_instructions_and_the_verifier_accepts_it()
    {
        Requires.AfXdp();

        int map = Bpf.MapCreate(Bpf.MapTypeXskMap, 4, 4, 1, "netmem_t");
        try
        {
            BpfInstruction[] prog = BpfProgramBuilder.XskRedirect(map);
            Assert.Equal(6, prog.Length);
            Assert.Equal(new BpfInstruction(0x61, 2, 1, 16, 0), prog[0]);
            Assert.Equal(new BpfInstruction(0x18, 1, 1, 0, map), prog[1]);
            Assert.Equal(new BpfInstruction(0x85, 0, 0, 0, BpfProgramBuilder.HelperRedirectMap), prog[4]);
            int fd = Bpf.ProgLoad(Bpf.ProgTypeXdp, prog, "netmem_ok", expectedAttachType: Bpf.AttachTypeXdp);
            Assert.True(fd > 0);
            Sys.Close(fd);
        }
        finally
        {
            Sys.Close(map);
        }
    }

    [Fact]
    public void An_interface_that_does_not_exist_gives_enodev_naming_it()
    {
        Requires.AfXdp();

        using var ns = NetNamespace.Create();
        var e = Assert.Throws<NativeException>(() => new XdpNic(ns, "nmnosuch0"));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.ENODEV, e.ErrorNumber);
        Assert.Contains("no interface named 'nmnosuch0'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_cap_net_raw_an_af_xdp_socket_is_refused_with_eperm_saying_so()
    {
        Requires.AfXdp();

        using var veth = VethPair.Create();
        var e = Assert.Throws<NativeException>(() => WithoutCapabilities(veth, [ThreadCapabilities.NetRaw]));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.EPERM, e.ErrorNumber);
        Assert.Equal("socket(AF_XDP)", e.Call);
        Assert.Contains("CAP_NET_RAW", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_cap_net_admin_and_cap_bpf_the_xdp_program_is_refused_with_eperm_saying_so()
    {
        Requires.AfXdp();

        using var veth = VethPair.Create();
        Exception e = Assert.ThrowsAny<Exception>(() => WithoutCapabilities(veth, [ThreadCapabilities.NetAdmin, ThreadCapabilities.SysAdmin, ThreadCapabilities.Bpf]));
        output.WriteLine(e.Message);
        int errno = e switch
        {
            NativeException n => n.ErrorNumber,
            BpfLoadException b => b.ErrorNumber,
            _ => -1,
        };
        Assert.Equal(Errno.EPERM, errno);
        Assert.Contains("CAP_BPF and CAP_NET_ADMIN", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Changing_the_channel_count_is_refused_with_eopnotsupp_and_the_queues_keep_running()
    {
        Requires.AfXdp();

        using var veth = VethPair.Create();
        using var nic = new XdpNic(veth.DeviceNamespace, veth.Name);

        var e = Assert.Throws<NetmemException>(() => nic.Device.SetRxChannels(1));
        output.WriteLine(e.Message);
        Assert.Equal(Errno.EOPNOTSUPP, e.Errno);
        Assert.Contains("driver does not support changing its channel count", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, nic.Device.RxChannelCount);
        Assert.NotNull(nic.QueueMemory(0));
    }

    /// <summary>
    /// Attaches an XdpNic to the veth's device end from a thread in its namespace that dropped
    /// <paramref name="capabilities"/>; that thread ends afterwards (it could not setns back).
    /// </summary>
    private static void WithoutCapabilities(VethPair veth, int[] capabilities) => veth.DeviceNamespace.Run(() =>
    {
        Exception? failure = null;
        var t = new Thread(() =>
        {
            try
            {
                ThreadCapabilities.DropEffective(capabilities);
                new XdpNic(null, veth.Name).Dispose();
            }
#pragma warning disable CA1031 // Handed back to the test thread.
            catch (Exception e)
#pragma warning restore CA1031
            {
                failure = e;
            }
        });
        t.Start();
        t.Join();
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    });
}
