using Xunit;

namespace Netmem.Tests.Tool;

/// <summary>One running <c>netmem demo --wait</c> shared by the tests of a class.</summary>
public sealed class DemoProcessFixture : IAsyncLifetime
{
    private ToolProcess? _demo;

    public int Pid => _demo!.Id;

    internal ToolProcess Demo => _demo!;

    public async ValueTask InitializeAsync() => _demo = await ToolProcess.StartDemoAsync();

    public ValueTask DisposeAsync()
    {
        _demo?.Dispose();
        return ValueTask.CompletedTask;
    }
}
