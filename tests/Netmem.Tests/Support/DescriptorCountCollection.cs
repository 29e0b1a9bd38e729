using Xunit;

namespace Netmem.Tests.Support;

/// <summary>
/// Tests that count the process's open descriptors: they run one at a time, after the parallel
/// tests, because any other test that opens a socket or a file while they count moves the total.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DescriptorCountCollection
{
    public const string Name = "Open descriptor count";
}
