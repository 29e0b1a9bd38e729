using Netmem;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Net;

// A page pool of its own: allocate, write, give back.
using (var pool = new PagePool(new PagePoolParams { PoolSize = 64, Name = "aot-sample" }))
{
    NetmemRef page = pool.AllocNetmem();
    page.GetPageSpan()[0] = 42;
    pool.PutNetmem(page, -1, allowDirect: false);
    Console.WriteLine($"pool: {pool}, one page allocated and returned through the ring ({pool.GetStats().RecycleRing} ring recycle)");
}

// A software NIC whose queue 1 is bound to a memfd region, and a socket for one UDP flow.
using DmabufRegion region = DmabufRegion.CreateMemfd("aot-sample", 4 << 20);
using var nic = new SimNic("aot-sim", new SimNicOptions { RxQueues = 2 });
using DmabufBindingHandle binding = nic.Device.BindDmabuf(region, [1]);
using DevmemSocket socket = nic.OpenSocket(FlowKey.Udp(9000));

const int Datagrams = 100;
const int Payload = 1400;
var frame = new byte[Payload + FrameBuilder.UdpV4Overhead];
var payload = new byte[Payload];
for (int i = 0; i < Datagrams; i++)
{
    FrameBuilder.FillPayload(payload, (ulong)i);
    int length = FrameBuilder.BuildUdp(frame, ipv6: false, 0x0a000001, 0x0a000002, 40000, 9000, payload);
    while (!nic.Inject(1, frame.AsSpan(0, length)))
    {
        Thread.Yield();
    }
}

var cmsgs = new DmabufCmsg[64];
var linear = new byte[64 * 2048];
var tokens = new uint[64];
var datagram = new byte[Payload];
int received = 0;
int verified = 0;
int filled = 0;
using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
while (received < Datagrams)
{
    int n = await socket.ReceiveAsync(cmsgs, linear, timeout.Token);
    int held = 0;
    for (int i = 0; i < n; i++)
    {
        DmabufCmsg c = cmsgs[i];
        ReadOnlySpan<byte> bytes = c.Type == DevmemCmsgType.Dmabuf
            ? region.GetSpan((long)c.FragOffset, (int)c.FragSize)
            : linear.AsSpan(c.LinearOffset, (int)c.FragSize);
        bytes.CopyTo(datagram.AsSpan(filled));
        filled += bytes.Length;
        if (c.Type == DevmemCmsgType.Dmabuf)
        {
            tokens[held++] = c.FragToken;
        }

        if (c.IsEndOfPacket)
        {
            verified += filled == Payload && FrameBuilder.VerifyPayload(datagram) ? 1 : 0;
            filled = 0;
            received++;
        }
    }

    socket.DontNeed(tokens.AsSpan(0, held));
}

Console.WriteLine($"socket: received {received}, verified {verified}, tokens outstanding {socket.TokensOutstanding}");
return verified == Datagrams && socket.TokensOutstanding == 0 ? 0 : 1;
