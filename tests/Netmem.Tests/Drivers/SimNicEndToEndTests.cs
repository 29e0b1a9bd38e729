using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Drivers;

public sealed class SimNicEndToEndTests
{
    [Fact]
    public void Payload_injected_on_a_bound_queue_is_read_back_through_the_region_and_everything_returns()
    {
        using var arena = new PageArena(32 << 20);
        using var region = DmabufRegion.CreateMemfd("e2e", 4 << 20);
        var nic = new SimNic("sim-e2e", new SimNicOptions { RxQueues = 2, Arena = arena });
        DmabufBindingHandle handle = nic.Device.BindDmabuf(region, [1]);
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(9000));

        byte[] frame = new byte[2000];
        byte[] payload = new byte[1400];
        const int Count = 500;
        for (int i = 0; i < Count; i++)
        {
            FrameBuilder.FillPayload(payload, (ulong)i);
            int len = FrameBuilder.BuildUdp(frame, ipv6: (i & 1) == 0, 0x0A000001, 0x0A000002, 1234, 9000, payload);
            while (!nic.Inject(1, frame.AsSpan(0, len)))
            {
                Thread.Yield();
            }
        }

        Assert.True(nic.WaitIdle(TimeSpan.FromSeconds(20)));
        Assert.Equal(Count, nic.QueueCounters(1).Packets);

        var cmsgs = new DmabufCmsg[64];
        byte[] linear = new byte[4096];
        uint[] tokens = new uint[64];
        int received = 0;
        while (true)
        {
            int n = socket.Receive(cmsgs, linear, out int linearBytes);
            if (n == 0)
            {
                break;
            }

            Assert.Equal(0, linearBytes);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(DevmemCmsgType.Dmabuf, cmsgs[i].Type);
                Assert.Equal((uint)handle.BindingId, cmsgs[i].DmabufId);
                Span<byte> bytes = region.GetSpan((long)cmsgs[i].FragOffset, (int)cmsgs[i].FragSize);
                Assert.True(FrameBuilder.VerifyPayload(bytes, out ulong seq));
                Assert.Equal((ulong)received, seq);
                tokens[i] = cmsgs[i].FragToken;
                received++;
            }

            Assert.Equal(n, socket.DontNeed(tokens.AsSpan(0, n)));
        }

        Assert.Equal(Count, received);
        handle.Dispose();
        nic.Dispose();
        Assert.Equal(handle.Binding.Size, handle.Binding.Avail);
        Assert.True(handle.Binding.IsFreed);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }
}
