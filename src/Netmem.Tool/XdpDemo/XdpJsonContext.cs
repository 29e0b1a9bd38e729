using System.Text.Json.Serialization;

namespace Netmem.Tool.XdpDemo;

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DictionaryKeyPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(XdpRunResult))]
internal sealed partial class XdpJsonContext : JsonSerializerContext
{
}
