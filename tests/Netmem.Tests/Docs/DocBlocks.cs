using System.Text.RegularExpressions;

namespace Netmem.Tests.Docs;

/// <summary>One fenced code block of a Markdown file: its language, text and first line.</summary>
internal sealed record DocBlock(string File, int FirstLine, string Language, string Code)
{
    /// <summary>Where the block starts, as a reader finds it: <c>docs/x.md:12</c>.</summary>
    public string Location => $"{File}:{FirstLine}";

    public override string ToString() => Location;
}

/// <summary>
/// The repository's documentation: README.md and every Markdown file under docs/, found from the
/// test's output folder by walking up to the folder that holds Netmem.sln.
/// </summary>
internal static partial class DocBlocks
{
    private static readonly Lazy<string> s_root = new(FindRoot);

    /// <summary>The repository root.</summary>
    public static string Root => s_root.Value;

    /// <summary>README.md and docs/**/*.md, as paths relative to the root with forward slashes.</summary>
    public static IReadOnlyList<string> MarkdownFiles()
    {
        List<string> files = ["README.md"];
        string docs = Path.Combine(Root, "docs");
        if (Directory.Exists(docs))
        {
            files.AddRange(Directory.EnumerateFiles(docs, "*.md", SearchOption.AllDirectories)
                .Select(f => Path.GetRelativePath(Root, f).Replace('\\', '/'))
                .Order(StringComparer.Ordinal));
        }

        return files;
    }

    /// <summary>Every fenced block of <paramref name="file"/>; <see cref="DocBlock.FirstLine"/> is the line after the opening fence.</summary>
    public static IEnumerable<DocBlock> Blocks(string file)
    {
        string[] lines = File.ReadAllLines(Path.Combine(Root, file));
        for (int i = 0; i < lines.Length; i++)
        {
            Match open = Fence().Match(lines[i]);
            if (!open.Success)
            {
                continue;
            }

            int start = i + 1;
            int end = start;
            while (end < lines.Length && lines[end].Trim() != "```")
            {
                end++;
            }

            yield return new DocBlock(file, start + 1, open.Groups[1].Value, string.Join('\n', lines[start..end]));
            i = end;
        }
    }

    /// <summary>Every C# block (fence info <c>csharp</c>) of README.md and docs/.</summary>
    public static IEnumerable<DocBlock> CSharpBlocks() =>
        MarkdownFiles().SelectMany(Blocks).Where(b => b.Language is "csharp" or "cs" or "c#");

    private static string FindRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Netmem.sln")))
            {
                return d.FullName;
            }
        }

        throw new InvalidOperationException("Netmem.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex(@"^```\s*([A-Za-z#+-]*)")]
    private static partial Regex Fence();
}
