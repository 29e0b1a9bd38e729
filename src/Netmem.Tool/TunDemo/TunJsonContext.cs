using System.Text.Json.Serialization;

namespace Netmem.Tool.TunDemo;

[JsonSourceGenerationOptions(WriteIndented = true, PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DictionaryKeyPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(TunRunResult))]
internal sealed partial class TunJsonContext : JsonSerializerContext
{
}
