using System.Buffers.Binary;
using Netmem.Drivers.Parsing;
using Xunit;

namespace Netmem.Tests.Tun;

/// <summary>The internet checksum TunNic computes over a datagram's fragments where they lie.</summary>
public sealed class InternetChecksumTests
{
    [Fact]
    public void The_rfc_1071_example_sums_to_its_published_value()
    {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2, so the checksum is its complement 220d.
        var c = new InternetChecksum();
        c.Add([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
        Assert.Equal((ushort)0x220d, c.Finish());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(1400)]
    [InlineData(1451)]
    public void Summing_in_pieces_split_at_odd_offsets_gives_the_checksum_of_the_whole(int length)
    {
        byte[] data = new byte[length];
        new Random(length).NextBytes(data);
        var whole = new InternetChecksum();
        whole.Add(data);

        var pieces = new InternetChecksum();
        int at = 0;
        foreach (int cut in new[] { 1, 3, 4, 5, 8, 13 })
        {
            int n = Math.Min(cut, length - at);
            pieces.Add(data.AsSpan(at, n));
            at += n;
        }

        pieces.Add(data.AsSpan(at));
        Assert.Equal(whole.Finish(), pieces.Finish());
        Assert.Equal(Reference(data), whole.Finish());
    }

    [Fact]
    public void A_buffer_that_carries_its_own_checksum_sums_to_zero()
    {
        byte[] data = [0x45, 0x00, 0x00, 0x1c, 0x12, 0x34, 0x00, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc6, 0x12, 0x00, 0x02, 0xc6, 0x12, 0x00, 0x01];
        var c = new InternetChecksum();
        c.Add(data);
        BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(10), c.Finish());

        var check = new InternetChecksum();
        check.Add(data);
        Assert.Equal(0, check.Finish());
    }

    /// <summary>The textbook loop: 16-bit big-endian words, an odd last byte padded with zero, end-around carry.</summary>
    private static ushort Reference(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (int i = 0; i < data.Length; i += 2)
        {
            sum += (uint)(data[i] << 8) | (i + 1 < data.Length ? data[i + 1] : 0u);
            sum = (sum & 0xFFFF) + (sum >> 16);
        }

        return (ushort)~sum;
    }
}
