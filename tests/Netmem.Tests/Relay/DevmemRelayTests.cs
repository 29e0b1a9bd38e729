using System.Net;
using Netmem.Devmem;
using Netmem.Drivers.Parsing;
using Netmem.Drivers.SimNic;
using Netmem.Native;
using Netmem.Net;
using Netmem.Tests.Devmem;
using Netmem.Tool.Demo;
using Netmem.Tool.Relay;
using Xunit;

namespace Netmem.Tests.Relay;

/// <summary>
/// The relay engine on a SimNic whose transmit entry holds every packet until the test ends it:
/// each datagram is one send from the region ranges it arrived in, and its rx tokens go back
/// only when the send's completion is read, in sequence order.
/// </summary>
public sealed class DevmemRelayTests : IDisposable
{
    private const ushort Port = 9300;

    private readonly HeldTxOps _held = new();
    private readonly SimNic _nic;
    private readonly DmabufRegion _region = DmabufRegion.CreateMemfd("relay-test", 16L << 20);
    private readonly DmabufBindingHandle _rx;
    private readonly DmabufBindingHandle _tx;
    private readonly DevmemSocket _socket;
    private readonly DevmemRelay _relay;

    public DevmemRelayTests()
    {
        _nic = new SimNic("relaytest", new SimNicOptions { RxQueues = 2, Mtu = 9000 });
        _rx = _nic.Device.BindDmabuf(_region, [0]);
        _nic.Device.TxOps = _held;
        _tx = _nic.Device.BindDmabufTx(_region);
        _socket = _nic.OpenSocket(FlowKey.Udp(Port));
        _socket.ZeroCopy = true;
        _socket.Connect(_nic.Device, new IPEndPoint(IPAddress.Parse("192.0.2.100"), Port), new IPEndPoint(IPAddress.Parse("192.0.2.200"), Port + 1));
        _relay = new DevmemRelay(_socket, _rx.BindingId, _tx.BindingId);
    }

    public void Dispose()
    {
        _held.CancelAll();
        _rx.Dispose();
        _tx.Dispose();
        _nic.Dispose();
        _region.Dispose();
    }

    /// <summary>Injects <paramref name="count"/> sequence-numbered datagrams into <paramref name="queue"/>.</summary>
    private void Inject(int count, int payload, int queue = 0)
    {
        byte[] frame = new byte[FrameBuilder.UdpV4Overhead + payload];
        FrameBuilder.BuildUdp(frame, false, 0xC0000201, 0xC0000264, 40000, Port, new byte[payload]);
        for (int i = 0; i < count; i++)
        {
            FrameBuilder.FillSequencePayload(frame.AsSpan(FrameBuilder.UdpV4Overhead), (ulong)i);
            Assert.True(_nic.Inject(queue, frame));
        }
    }

    /// <summary>Polls the relay until <paramref name="done"/> holds (bounded).</summary>
    private void PollUntil(Func<bool> done) =>
        Assert.True(RunChecks.WaitUntil(() => { _relay.Poll(); return done(); }, TimeSpan.FromSeconds(10)), "the relay did not get there in 10 s");

    [Fact]
    public void Each_datagram_is_one_send_from_the_region_ranges_it_arrived_in()
    {
        Inject(3, 1400);
        PollUntil(() => _relay.Relayed == 3);

        Assert.Equal(3, _held.Count);
        for (int i = 0; i < 3; i++)
        {
            DevmemTxPacket p = _held[i];
            Assert.Equal(1, p.FragCount);
            Assert.Equal(1400, p.PayloadLength);
            Assert.Same(_tx.Binding, p.Binding);
            DevmemTxFrag f = p.GetFrag(0);
            Assert.True(FrameBuilder.VerifySequencePayload(_region.GetSpan((long)f.RegionOffset, f.Length), out ulong seq));
            Assert.Equal((ulong)i, seq);
        }

        Assert.Equal(3 * 1400, _relay.RelayedBytes);
        Assert.Equal(0, _relay.BytesCopied);
    }

    [Fact]
    public void Tokens_go_back_only_when_the_sends_completion_is_read_in_sequence_order()
    {
        Inject(3, 1400);
        PollUntil(() => _relay.Relayed == 3);
        Assert.Equal(3, _socket.TokensOutstanding);
        Assert.Equal(3, _relay.TokensHeld);

        // The second send ends first: its completion waits behind the first's, and so do its tokens.
        _held.Complete(1);
        _relay.Poll();
        Assert.Equal(3, _socket.TokensOutstanding);
        Assert.Equal(0, _relay.Completed);

        _held.Complete(0);
        PollUntil(() => _relay.Completed == 2);
        Assert.Equal(1, _socket.TokensOutstanding);
        Assert.Equal(1, _relay.TokensHeld);

        _held.Complete(2);
        PollUntil(() => _relay.Completed == 3);
        Assert.Equal(0, _socket.TokensOutstanding);
        Assert.Equal(0, _relay.TokensHeld);
        Assert.True(_relay.IsIdle);
        Assert.Equal(3, _socket.DontNeedFreed);
    }

    [Fact]
    public void A_multi_fragment_datagram_is_one_send_of_all_its_fragments_and_holds_all_its_tokens()
    {
        Inject(1, 8972);
        PollUntil(() => _relay.Relayed == 1);

        DevmemTxPacket p = _held[0];
        Assert.Equal(3, p.FragCount);
        Assert.Equal(8972, p.PayloadLength);
        Assert.Equal(1, _relay.MultiFragment);
        Assert.Equal(3, _relay.Fragments);
        Assert.Equal(3, _socket.TokensOutstanding);
        byte[] payload = new byte[8972];
        int at = 0;
        for (int i = 0; i < p.FragCount; i++)
        {
            DevmemTxFrag f = p.GetFrag(i);
            _region.GetSpan((long)f.RegionOffset, f.Length).CopyTo(payload.AsSpan(at));
            at += f.Length;
        }

        Assert.True(FrameBuilder.VerifySequencePayload(payload, out ulong seq));
        Assert.Equal(0UL, seq);

        _held.Complete(0);
        PollUntil(() => _relay.Completed == 1);
        Assert.Equal(0, _socket.TokensOutstanding);
    }

    [Fact]
    public void A_cancelled_send_gives_its_tokens_back_and_is_counted_as_cancelled()
    {
        Inject(1, 64);
        PollUntil(() => _relay.Relayed == 1);

        _held.Cancel(0);
        PollUntil(() => _relay.Cancelled == 1);

        Assert.Equal(0, _relay.Completed);
        Assert.Equal(0, _socket.TokensOutstanding);
        Assert.True(_relay.IsIdle);
    }

    [Fact]
    public void A_full_send_window_keeps_the_datagram_and_its_tokens_until_there_is_room()
    {
        _held.Refuse = Errno.ENOBUFS;
        Inject(2, 64);
        Assert.True(RunChecks.WaitUntil(() => _socket.DeliveredPackets == 2, TimeSpan.FromSeconds(10)));
        PollUntil(() => _relay.IsBlocked);

        // Both datagrams were received (one in hand, one waiting behind it); neither went back.
        Assert.True(_relay.Blocked >= 1);
        Assert.Equal(0, _relay.Relayed);
        Assert.Equal(0, _relay.SendFailures);
        Assert.Equal(2, _socket.TokensOutstanding);
        Assert.Equal(0, _held.Count);

        _held.Refuse = 0;
        PollUntil(() => _relay.Relayed == 2);
        Assert.Equal(2, _held.Count);
        Assert.Equal(2, _socket.TokensOutstanding);
    }

    [Fact]
    public void A_send_refused_with_another_errno_is_counted_and_its_tokens_go_back_at_once()
    {
        _held.Refuse = Errno.EMSGSIZE;
        Inject(2, 64);
        PollUntil(() => _relay.Received == 2);

        Assert.Equal(2, _relay.SendFailures);
        Assert.Equal(Errno.EMSGSIZE, _relay.LastSendErrno);
        Assert.Equal(0, _relay.Relayed);
        Assert.Equal(0, _socket.TokensOutstanding);
        Assert.Equal(0, _socket.SendsInFlight);
        Assert.Equal(0, _socket.ZeroCopySends);
        Assert.True(_relay.IsIdle);
    }

    [Fact]
    public void A_datagram_that_arrived_in_readable_memory_is_not_relayed_and_its_copy_is_counted()
    {
        // Queue 1 is not bound: the payload lands in system pages and the socket copies it out.
        Inject(1, 500, queue: 1);
        PollUntil(() => _relay.Received == 1);

        Assert.Equal(1, _relay.Unrelayable);
        Assert.Equal(0, _relay.Relayed);
        Assert.Equal(500, _relay.BytesCopied);
        Assert.Equal(0, _held.Count);
        Assert.Equal(0, _socket.TokensOutstanding);
    }

    [Fact]
    public void The_relay_refuses_a_socket_without_zero_copy_or_a_destination()
    {
        using var bare = new DevmemSocket(FlowKey.Udp(9399));
        var e = Assert.Throws<ArgumentException>(() => new DevmemRelay(bare, _rx.BindingId, _tx.BindingId));
        Assert.Contains("ZeroCopy on and be connected", e.Message, StringComparison.Ordinal);
    }
}
