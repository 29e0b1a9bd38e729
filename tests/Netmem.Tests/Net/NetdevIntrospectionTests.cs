using System.Text.Json;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;
using Xunit;

namespace Netmem.Tests.Net;

/// <summary>The netdev-netlink-style dumps show a NIC's pools and queues, bound or not, as records and JSON.</summary>
public sealed class NetdevIntrospectionTests
{
    [Fact]
    public void Page_pool_and_queue_dumps_show_the_bound_queue_and_detach_time_after_destroy()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("introspect", 1 << 20);
        var nic = new SimNic("introspect", new SimNicOptions { RxQueues = 2, RxRingSize = 16, PoolSize = 64, Arena = arena });
        DmabufBindingHandle h = nic.Device.BindDmabuf(region, [1]);
        DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(7600));
        byte[] frame = new byte[2048];
        byte[] payload = new byte[1000];
        FrameBuilder.FillPayload(payload, 1);
        Assert.True(nic.Inject(1, frame.AsSpan(0, FrameBuilder.BuildUdp(frame, false, 1, 2, 3, 7600, payload))));
        Assert.True(nic.WaitIdle(TimeSpan.FromSeconds(20)));
        var cmsgs = new DmabufCmsg[4];
        Assert.Equal(1, socket.Receive(cmsgs, [], out _)); // hold the token: the payload pool keeps a net_iov out

        PagePool payloadPool = nic.QueueMemory(1)!.PayloadPool;
        PagePool headerPool = nic.QueueMemory(1)!.HeaderPool;
        PagePool q0Payload = nic.QueueMemory(0)!.PayloadPool;
        RxQueue rxq1 = nic.Device.RxQueues[1];

        IReadOnlyList<PagePoolInfo> pools = NetdevIntrospection.PagePools();
        PagePoolInfo p = Assert.Single(pools, x => x.Id == payloadPool.Id);
        Assert.Equal(nic.Device.Ifindex, p.Ifindex);
        Assert.Equal(1, p.Queue);
        Assert.Equal(rxq1.Napi.Id, p.NapiId);
        Assert.Equal(payloadPool.Inflight, p.Inflight);
        Assert.True(p.Inflight >= 17); // 16 posted descriptors + the one the socket holds
        Assert.Equal(p.Inflight * 4096, p.InflightMem);
        Assert.Equal(h.BindingId, p.DmabufId);
        Assert.Null(p.DetachTime);
        Assert.Equal("introspect-q1-payload", p.Name);
        Assert.Null(Assert.Single(pools, x => x.Id == headerPool.Id).DmabufId);
        Assert.Null(Assert.Single(pools, x => x.Id == q0Payload.Id).DmabufId);
        Assert.Equal(4, pools.Count(x => x.Ifindex == nic.Device.Ifindex && x.DetachTime is null));

        IReadOnlyList<QueueInfo> queues = NetdevIntrospection.Queues().Where(q => q.Ifindex == nic.Device.Ifindex).ToList();
        Assert.Equal(2, queues.Count);
        Assert.Equal(new QueueInfo(nic.Device.Ifindex, "introspect", 0, "rx", nic.Device.RxQueues[0].Napi.Id, null), queues[0]);
        Assert.Equal(new QueueInfo(nic.Device.Ifindex, "introspect", 1, "rx", rxq1.Napi.Id, h.BindingId), queues[1]);

        PagePoolStatsInfo stats = Assert.Single(NetdevIntrospection.PagePoolStats(), s => s.Id == payloadPool.Id);
        Assert.Equal(1, stats.Queue);
        Assert.Equal(nic.Device.Ifindex, stats.Ifindex);
        Assert.Equal(payloadPool.GetStats(), stats.Stats);

        // Unbind: the old payload pool is destroyed but lingers for the held net_iov, with a detach time.
        DateTimeOffset beforeUnbind = DateTimeOffset.UtcNow;
        h.Dispose();
        PagePoolInfo lingering = Assert.Single(NetdevIntrospection.PagePools(), x => x.Id == payloadPool.Id);
        Assert.NotNull(lingering.DetachTime);
        Assert.InRange(lingering.DetachTime!.Value, beforeUnbind.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(1, lingering.Inflight);
        Assert.Equal(h.BindingId, lingering.DmabufId);
        Assert.Null(Assert.Single(NetdevIntrospection.Queues(), q => q.Ifindex == nic.Device.Ifindex && q.Id == 1).DmabufId);

        Assert.Equal(1, socket.DontNeed([cmsgs[0].FragToken]));
        Assert.True(payloadPool.IsFreed);
        Assert.DoesNotContain(NetdevIntrospection.PagePools(), x => x.Id == payloadPool.Id);

        int ifindex = nic.Device.Ifindex;
        nic.Dispose();
        Assert.True(h.Binding.IsFreed);
        Assert.DoesNotContain(NetdevIntrospection.Queues(), q => q.Ifindex == ifindex);
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }

    [Fact]
    public void Json_dumps_parse_and_carry_the_netlink_fields()
    {
        using var arena = new PageArena(16 << 20);
        using DmabufRegion region = DmabufRegion.CreateMemfd("introspect-json", 1 << 20);
        var nic = new SimNic("introspect-json", new SimNicOptions { RxQueues = 2, RxRingSize = 16, PoolSize = 64, Arena = arena });
        DmabufBindingHandle h = nic.Device.BindDmabuf(region, [0]);
        int payloadId = nic.QueueMemory(0)!.PayloadPool.Id;
        int ifindex = nic.Device.Ifindex;

        using (JsonDocument doc = JsonDocument.Parse(NetdevIntrospection.PagePoolsJson()))
        {
            JsonElement pool = doc.RootElement.EnumerateArray().Single(e => e.GetProperty("id").GetInt32() == payloadId);
            Assert.Equal(ifindex, pool.GetProperty("ifindex").GetInt32());
            Assert.Equal(0, pool.GetProperty("queue").GetInt32());
            Assert.Equal(nic.Device.RxQueues[0].Napi.Id, pool.GetProperty("napi_id").GetInt32());
            long inflight = nic.QueueMemory(0)!.PayloadPool.Inflight;
            Assert.True(inflight >= 16); // at least the posted rx descriptors
            Assert.Equal(inflight, pool.GetProperty("inflight").GetInt64());
            Assert.Equal(inflight * 4096, pool.GetProperty("inflight_mem").GetInt64());
            Assert.Equal(h.BindingId, pool.GetProperty("dmabuf_id").GetInt32());
            Assert.Equal(JsonValueKind.Null, pool.GetProperty("detach_time").ValueKind);
        }

        using (JsonDocument doc = JsonDocument.Parse(NetdevIntrospection.QueuesJson()))
        {
            JsonElement[] mine = [.. doc.RootElement.EnumerateArray().Where(e => e.GetProperty("ifindex").GetInt32() == ifindex)];
            Assert.Equal(2, mine.Length);
            Assert.All(mine, q => Assert.Equal("rx", q.GetProperty("type").GetString()));
            Assert.Equal([0, 1], mine.Select(q => q.GetProperty("id").GetInt32()));
            Assert.Equal(h.BindingId, mine[0].GetProperty("dmabuf_id").GetInt32());
            Assert.Equal(JsonValueKind.Null, mine[1].GetProperty("dmabuf_id").ValueKind);
            Assert.Equal(nic.Device.RxQueues[1].Napi.Id, mine[1].GetProperty("napi_id").GetInt32());
        }

        using (JsonDocument doc = JsonDocument.Parse(NetdevIntrospection.PagePoolStatsJson()))
        {
            JsonElement s = doc.RootElement.EnumerateArray().Single(e => e.GetProperty("id").GetInt32() == payloadId);
            Assert.Equal(ifindex, s.GetProperty("ifindex").GetInt32());
            Assert.Equal(JsonValueKind.Object, s.GetProperty("stats").ValueKind);
            Assert.True(s.GetProperty("stats").EnumerateObject().Any());
        }

        using (JsonDocument doc = JsonDocument.Parse(NetdevIntrospection.DevicesJson()))
        {
            JsonElement d = doc.RootElement.EnumerateArray().Single(e => e.GetProperty("ifindex").GetInt32() == ifindex);
            Assert.Equal("introspect-json", d.GetProperty("name").GetString());
            Assert.Equal("enabled", d.GetProperty("tcp_data_split").GetString());
            Assert.True(d.GetProperty("queue_management").GetBoolean());
        }

        h.Dispose();
        nic.Dispose();
        Assert.Equal(arena.TotalPages(0), arena.FreePages(0));
    }
}
