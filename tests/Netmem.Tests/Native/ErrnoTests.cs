using Netmem.Native;
using Xunit;

namespace Netmem.Tests.Interop;

/// <summary>Every errno Linux defines prints by its symbolic name.</summary>
public sealed class ErrnoTests
{
    [Theory]
    [InlineData(Errno.EMFILE, 24, "EMFILE")]
    [InlineData(Errno.ENFILE, 23, "ENFILE")]
    [InlineData(Errno.ENOTTY, 25, "ENOTTY")]
    [InlineData(Errno.EFBIG, 27, "EFBIG")]
    [InlineData(Errno.ESPIPE, 29, "ESPIPE")]
    [InlineData(Errno.EHWPOISON, 133, "EHWPOISON")]
    [InlineData(Errno.ECANCELED, 125, "ECANCELED")]
    public void Errnos_that_printed_as_numbers_print_by_name(int errno, int value, string name)
    {
        Assert.Equal(value, errno);
        Assert.Equal(name, Errno.Name(errno));
    }

    [Fact]
    public void Every_value_from_1_to_133_has_a_name_except_the_two_unassigned()
    {
        int[] unnamed = Enumerable.Range(1, Errno.MaxDefined)
            .Where(e => Errno.Name(e) == "E" + e)
            .ToArray();

        Assert.Equal(133, Errno.MaxDefined);
        Assert.Equal([41, 58], unnamed);
    }

    [Fact]
    public void Names_are_unique_per_value()
    {
        string[] names = Enumerable.Range(1, Errno.MaxDefined).Select(Errno.Name).ToArray();

        Assert.Equal(names.Length, names.Distinct().Count());
    }

    [Fact]
    public void Aliases_print_as_the_kernel_primary_name()
    {
        Assert.Equal("EAGAIN", Errno.Name(Errno.EWOULDBLOCK));
        Assert.Equal("EDEADLK", Errno.Name(Errno.EDEADLOCK));
        Assert.Equal("EOPNOTSUPP", Errno.Name(Errno.ENOTSUP));
    }

    [Fact]
    public void Zero_prints_as_OK()
    {
        Assert.Equal("OK", Errno.Name(0));
    }

    [Theory]
    [InlineData(134, "E134")]
    [InlineData(-1, "E-1")]
    public void Values_outside_the_table_print_as_a_number(int errno, string name)
    {
        Assert.Equal(name, Errno.Name(errno));
    }
}
