using System.Text.Json.Serialization;

namespace Netmem.Tool.UdpDemo;

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DictionaryKeyPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(UdpRunResult))]
internal sealed partial class UdpJsonContext : JsonSerializerContext
{
}
