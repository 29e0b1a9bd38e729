using Xunit;

namespace Netmem.Tests.Diagnostics;

/// <summary>
/// Tests that enable the process-wide Netmem EventSource, or need it disabled: they run one at a
/// time, after the parallel tests, so no other test's listener changes what they see.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DiagnosticsCollection
{
    public const string Name = "Netmem EventSource";
}
