using System.Text.Json.Serialization;

namespace Netmem.Tool;

[JsonSerializable(typeof(string))]
internal sealed partial class ToolJsonContext : JsonSerializerContext
{
}
