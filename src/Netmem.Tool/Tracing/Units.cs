using System.Globalization;

namespace Netmem.Tool.Tracing;

/// <summary>
/// The units every table of the tool uses: counts as plain integers, memory in binary units
/// (<c>K</c>, <c>M</c>, <c>G</c> are KiB, MiB, GiB) with one decimal, rates with a <c>/s</c>
/// suffix. JSON always carries plain numbers: bytes and counts.
/// </summary>
internal static class Units
{
    /// <summary><c>512</c>, <c>256.0K</c>, <c>1.5M</c>, <c>2.0G</c>.</summary>
    public static string Bytes(double b) => b switch
    {
        >= 1L << 30 => (b / (1L << 30)).ToString("0.0", CultureInfo.InvariantCulture) + "G",
        >= 1L << 20 => (b / (1L << 20)).ToString("0.0", CultureInfo.InvariantCulture) + "M",
        >= 1L << 10 => (b / (1L << 10)).ToString("0.0", CultureInfo.InvariantCulture) + "K",
        _ => b.ToString("0", CultureInfo.InvariantCulture),
    };

    /// <summary>A count: <c>1234567</c>.</summary>
    public static string Count(double n) => n.ToString("0", CultureInfo.InvariantCulture);

    /// <summary>A rate: <c>950/s</c>, <c>12.3K/s</c>, <c>4.5M/s</c> (decimal thousands, as rates are read).</summary>
    public static string Rate(double perSecond) => perSecond switch
    {
        >= 1e9 => (perSecond / 1e9).ToString("0.0", CultureInfo.InvariantCulture) + "G/s",
        >= 1e6 => (perSecond / 1e6).ToString("0.0", CultureInfo.InvariantCulture) + "M/s",
        >= 1e4 => (perSecond / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "K/s",
        _ => perSecond.ToString("0", CultureInfo.InvariantCulture) + "/s",
    };
}
