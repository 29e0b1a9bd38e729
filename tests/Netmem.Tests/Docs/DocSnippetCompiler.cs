using System.Collections.Immutable;
using System.Runtime.InteropServices;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Netmem.Drivers.SimNic;

namespace Netmem.Tests.Docs;

/// <summary>
/// Compiles a documentation block the way a reader's new console app would: top-level
/// statements, nullable on, the SDK's implicit usings, references to the framework and the
/// three Netmem libraries only, and an assembly name no <c>InternalsVisibleTo</c> names (so only
/// public API compiles).
/// </summary>
internal static class DocSnippetCompiler
{
    /// <summary>The usings a new console project gets from <c>ImplicitUsings</c>.</summary>
    private const string ImplicitUsings = """
        global using global::System;
        global using global::System.Collections.Generic;
        global using global::System.IO;
        global using global::System.Linq;
        global using global::System.Net.Http;
        global using global::System.Threading;
        global using global::System.Threading.Tasks;
        """;

    private static readonly Lazy<ImmutableArray<MetadataReference>> s_references = new(LoadReferences);

    /// <summary>Compiles <paramref name="block"/>; returns its errors, each located in the Markdown file.</summary>
    public static IReadOnlyList<string> Errors(DocBlock block, out Compilation compilation, out SyntaxTree tree)
    {
        var parse = new CSharpParseOptions(LanguageVersion.Latest);
        tree = CSharpSyntaxTree.ParseText(block.Code, parse, path: block.File);
        compilation = CSharpCompilation.Create(
            "NetmemDocSample",
            [tree, CSharpSyntaxTree.ParseText(ImplicitUsings, parse, path: "ImplicitUsings.g.cs")],
            s_references.Value,
            new CSharpCompilationOptions(OutputKind.ConsoleApplication, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: false));

        return compilation.GetDiagnostics()
            .Where(d => d.Severity == DiagnosticSeverity.Error && d.Id != "CS5001") // a block of type declarations only has no entry point
            .Select(d => Locate(block, d))
            .ToList();
    }

    /// <summary>
    /// Locals of disposable types that the block neither declares with <c>using</c> nor disposes:
    /// a sample must show readers how to give back what it created.
    /// </summary>
    public static IReadOnlyList<string> Undisposed(DocBlock block, Compilation compilation, SyntaxTree tree)
    {
        SemanticModel model = compilation.GetSemanticModel(tree);
        INamedTypeSymbol disposable = compilation.GetSpecialType(SpecialType.System_IDisposable);
        SyntaxNode root = tree.GetRoot();
        var disposedNames = root.DescendantNodes().OfType<InvocationExpressionSyntax>()
            .Select(i => i.Expression)
            .OfType<MemberAccessExpressionSyntax>()
            .Where(m => m.Name.Identifier.Text == "Dispose" && m.Expression is IdentifierNameSyntax)
            .Select(m => ((IdentifierNameSyntax)m.Expression).Identifier.Text)
            .ToHashSet(StringComparer.Ordinal);

        List<string> found = [];
        foreach (LocalDeclarationStatementSyntax local in root.DescendantNodes().OfType<LocalDeclarationStatementSyntax>())
        {
            if (!local.UsingKeyword.IsKind(SyntaxKind.None))
            {
                continue;
            }

            foreach (VariableDeclaratorSyntax v in local.Declaration.Variables)
            {
                if (model.GetDeclaredSymbol(v) is ILocalSymbol symbol
                    && symbol.Type.AllInterfaces.Contains(disposable, SymbolEqualityComparer.Default)
                    && v.Initializer?.Value is ObjectCreationExpressionSyntax or ImplicitObjectCreationExpressionSyntax or InvocationExpressionSyntax
                    && !disposedNames.Contains(symbol.Name))
                {
                    int line = v.GetLocation().GetLineSpan().StartLinePosition.Line;
                    found.Add($"{block.File}:{block.FirstLine + line}: '{symbol.Name}' ({symbol.Type.Name}) is created but neither declared with 'using' nor disposed");
                }
            }
        }

        return found;
    }

    private static string Locate(DocBlock block, Diagnostic d)
    {
        FileLinePositionSpan span = d.Location.GetLineSpan();
        int line = d.Location.SourceTree?.FilePath == block.File ? block.FirstLine + span.StartLinePosition.Line : 0;
        return $"{block.File}:{line}: {d.Id}: {d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)}";
    }

    private static ImmutableArray<MetadataReference> LoadReferences()
    {
        string runtimeDir = RuntimeEnvironment.GetRuntimeDirectory();
        IEnumerable<string> framework = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!)
            .Split(Path.PathSeparator)
            .Where(p => p.StartsWith(runtimeDir, StringComparison.Ordinal));
        string[] netmem =
        [
            typeof(NetmemRef).Assembly.Location,
            typeof(Netmem.Native.Errno).Assembly.Location,
            typeof(SimNic).Assembly.Location,
        ];
        return [.. framework.Concat(netmem).Select(p => (MetadataReference)MetadataReference.CreateFromFile(p))];
    }
}
