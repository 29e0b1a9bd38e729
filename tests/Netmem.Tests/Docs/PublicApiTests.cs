using System.Reflection;
using System.Text;
using Netmem.Drivers.SimNic;
using Xunit;

namespace Netmem.Tests.Docs;

/// <summary>
/// The public API of each library is written down in <c>api/&lt;assembly&gt;.txt</c>; a change to
/// the surface fails this test until the baseline is updated in the same commit, so every public
/// change is deliberate and shows in review. Update with
/// <c>NETMEM_UPDATE_API_BASELINE=1 dotnet test tests/Netmem.Tests -c Release --filter "FullyQualifiedName~PublicApiTests"</c>.
/// </summary>
public sealed class PublicApiTests
{
    private const string UpdateVariable = "NETMEM_UPDATE_API_BASELINE";

    public static TheoryData<string> Libraries() => ["Netmem.Native", "Netmem.Core", "Netmem.Drivers"];

    [Theory]
    [MemberData(nameof(Libraries))]
    public void The_public_api_matches_its_reviewed_baseline(string assemblyName)
    {
        Assembly assembly = Load(assemblyName);
        string actual = PublicApiListing.Of(assembly);
        string baseline = Path.Combine(DocBlocks.Root, "api", assemblyName + ".txt");

        if (Environment.GetEnvironmentVariable(UpdateVariable) == "1")
        {
            Directory.CreateDirectory(Path.GetDirectoryName(baseline)!);
            File.WriteAllText(baseline, actual);
        }

        if (!File.Exists(baseline))
        {
            Assert.Skip($"no baseline for {assemblyName} yet: run with {UpdateVariable}=1 to write api/{assemblyName}.txt, review it and commit it");
        }

        string[] expected = File.ReadAllLines(baseline);
        string[] lines = actual.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string[] added = [.. lines.Except(expected, StringComparer.Ordinal)];
        string[] removed = [.. expected.Except(lines, StringComparer.Ordinal)];
        Assert.True(
            added.Length == 0 && removed.Length == 0,
            $"the public API of {assemblyName} differs from api/{assemblyName}.txt; if the change is deliberate, run with {UpdateVariable}=1 and commit the file.\n"
            + string.Join('\n', added.Select(a => "+ " + a).Concat(removed.Select(r => "- " + r))));
    }

    [Fact]
    public void Netmem_Native_exports_only_errno_its_exceptions_the_namespace_handle_and_the_values_drivers_report()
    {
        // Interop is internal (InternalsVisibleTo in Netmem.Native.csproj grants the Netmem
        // assemblies, the tool, the tests and the benchmarks): a new public type here is a
        // deliberate API decision, made by changing this list.
        string[] exported = [.. typeof(Netmem.Native.Errno).Assembly.GetExportedTypes().Select(t => t.FullName!).Order(StringComparer.Ordinal)];

        Assert.Equal(
            [
                "Netmem.Native.BpfLoadException", "Netmem.Native.Errno", "Netmem.Native.LinkStats64", "Netmem.Native.NativeException",
                "Netmem.Native.NetNamespace", "Netmem.Native.XdpAttachMode", "Netmem.Native.XskMode", "Netmem.Native.XskStatistics",
            ],
            exported);
    }

    [Fact]
    public void The_listing_names_public_and_protected_members_and_leaves_internals_out()
    {
        string listing = PublicApiListing.Of(typeof(NetmemRef).Assembly);

        Assert.Contains("public sealed class Netmem.PagePool", listing, StringComparison.Ordinal);
        Assert.Contains("  method Netmem.NetmemRef AllocNetmem()", listing, StringComparison.Ordinal);
        Assert.DoesNotContain("PagePoolRegistry", listing, StringComparison.Ordinal);
    }

    private static Assembly Load(string name) => name switch
    {
        "Netmem.Native" => typeof(Netmem.Native.Errno).Assembly,
        "Netmem.Core" => typeof(NetmemRef).Assembly,
        "Netmem.Drivers" => typeof(SimNic).Assembly,
        _ => throw new ArgumentOutOfRangeException(nameof(name), name, "not a Netmem library"),
    };
}

/// <summary>A stable, sorted text listing of an assembly's public and protected surface.</summary>
internal static class PublicApiListing
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    public static string Of(Assembly assembly)
    {
        var sb = new StringBuilder();
        foreach (Type t in assembly.GetExportedTypes().OrderBy(t => t.FullName, StringComparer.Ordinal))
        {
            sb.Append(TypeLine(t)).Append('\n');
            foreach (string member in t.GetMembers(Declared).Where(Visible).Select(Member).Where(m => m.Length > 0).Order(StringComparer.Ordinal))
            {
                sb.Append("  ").Append(member).Append('\n');
            }
        }

        return sb.ToString();
    }

    private static string TypeLine(Type t)
    {
        string kind = t.IsEnum ? "enum" : t.IsInterface ? "interface" : t.IsValueType ? "struct" : typeof(Delegate).IsAssignableFrom(t) ? "delegate" : "class";
        string modifiers = t.IsAbstract && t.IsSealed && !t.IsValueType ? "static " : t.IsSealed && !t.IsValueType && !t.IsEnum && kind == "class" ? "sealed " : t.IsAbstract && kind == "class" ? "abstract " : string.Empty;
        string bases = string.Join(", ", new[] { t.BaseType }.Where(b => b is not null && b != typeof(object) && b != typeof(ValueType) && b != typeof(Enum)).Select(b => Name(b!))
            .Concat(t.GetInterfaces().Select(Name).Order(StringComparer.Ordinal)));
        return $"public {modifiers}{kind} {Name(t)}" + (bases.Length > 0 ? " : " + bases : string.Empty);
    }

    private static bool Visible(MemberInfo m) => m switch
    {
        MethodBase mb => (mb.IsPublic || mb.IsFamily || mb.IsFamilyOrAssembly) && !(mb.IsSpecialName && (mb.Name.StartsWith("get_", StringComparison.Ordinal) || mb.Name.StartsWith("set_", StringComparison.Ordinal) || mb.Name.StartsWith("add_", StringComparison.Ordinal) || mb.Name.StartsWith("remove_", StringComparison.Ordinal))),
        FieldInfo f => (f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly) && !f.IsSpecialName,
        PropertyInfo p => p.GetAccessors(nonPublic: true).Any(a => a.IsPublic || a.IsFamily || a.IsFamilyOrAssembly),
        EventInfo e => e.AddMethod is { } add && (add.IsPublic || add.IsFamily),
        _ => false,
    };

    private static string Member(MemberInfo m) => m switch
    {
        ConstructorInfo c => $"ctor({Parameters(c)})",
        MethodInfo mi => $"{(mi.IsStatic ? "static " : string.Empty)}method {Name(mi.ReturnType)} {mi.Name}{Generic(mi)}({Parameters(mi)})",
        FieldInfo f => f.IsLiteral ? $"const {Name(f.FieldType)} {f.Name} = {f.GetRawConstantValue()}" : $"{(f.IsStatic ? "static " : string.Empty)}{(f.IsInitOnly ? "readonly " : string.Empty)}field {Name(f.FieldType)} {f.Name}",
        PropertyInfo p => $"property {Name(p.PropertyType)} {p.Name}{Indexer(p)} {{ {Accessors(p)}}}",
        EventInfo e => $"event {Name(e.EventHandlerType!)} {e.Name}",
        _ => string.Empty,
    };

    private static string Accessors(PropertyInfo p)
    {
        var sb = new StringBuilder();
        if (p.GetMethod is { } g && (g.IsPublic || g.IsFamily))
        {
            sb.Append("get; ");
        }

        if (p.SetMethod is { } s && (s.IsPublic || s.IsFamily))
        {
            bool init = s.ReturnParameter.GetRequiredCustomModifiers().Any(t => t.FullName == "System.Runtime.CompilerServices.IsExternalInit");
            sb.Append(init ? "init; " : "set; ");
        }

        return sb.ToString();
    }

    private static string Indexer(PropertyInfo p)
    {
        ParameterInfo[] ps = p.GetIndexParameters();
        return ps.Length == 0 ? string.Empty : "[" + string.Join(", ", ps.Select(x => Name(x.ParameterType))) + "]";
    }

    private static string Generic(MethodInfo m) =>
        m.IsGenericMethodDefinition ? "<" + string.Join(", ", m.GetGenericArguments().Select(a => a.Name)) + ">" : string.Empty;

    private static string Parameters(MethodBase m) => string.Join(", ", m.GetParameters().Select(p =>
        (p.IsOut ? "out " : p.ParameterType.IsByRef ? (p.IsIn ? "in " : "ref ") : string.Empty)
        + Name(p.ParameterType.IsByRef ? p.ParameterType.GetElementType()! : p.ParameterType)
        + " " + p.Name
        + (p.HasDefaultValue ? " = " + (p.DefaultValue ?? "null") : string.Empty)));

    private static string Name(Type t)
    {
        if (t.IsGenericParameter)
        {
            return t.Name;
        }

        if (t.IsArray)
        {
            return Name(t.GetElementType()!) + "[]";
        }

        if (t.IsPointer)
        {
            return Name(t.GetElementType()!) + "*";
        }

        if (t.IsByRef)
        {
            return Name(t.GetElementType()!) + "&";
        }

        string name = (t.IsNested ? Name(t.DeclaringType!) + "." + t.Name : t.Namespace + "." + t.Name).Split('`')[0];
        return t.IsGenericType ? name + "<" + string.Join(", ", t.GetGenericArguments().Select(Name)) + ">" : name;
    }
}
