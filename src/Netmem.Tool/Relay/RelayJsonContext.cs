using System.Text.Json.Serialization;

namespace Netmem.Tool.Relay;

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DictionaryKeyPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(RelayRunResult))]
internal sealed partial class RelayJsonContext : JsonSerializerContext
{
}
