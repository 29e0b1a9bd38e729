using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Xunit;

namespace Netmem.Tests.Docs;

/// <summary>
/// The documentation is part of the product: every C# block of README.md and docs/ compiles
/// against the public API and disposes what it creates, every link points to a file in the
/// repository, and every source path the docs name exists.
/// </summary>
public sealed partial class DocumentationTests
{
    public static TheoryData<string> CSharpBlocks() => [.. DocBlocks.CSharpBlocks().Select(b => b.Location)];

    [Fact]
    public void The_readme_and_the_docs_hold_csharp_blocks_to_check()
    {
        string[] files = [.. DocBlocks.CSharpBlocks().Select(b => b.File).Distinct()];

        Assert.Contains("README.md", files);
        Assert.Contains("docs/guides/receiving-into-a-bound-region.md", files);
        Assert.Contains("docs/guides/writing-a-driver.md", files);
        Assert.Contains("docs/guides/tracing-and-metrics.md", files);
    }

    [Theory]
    [MemberData(nameof(CSharpBlocks))]
    public void Every_csharp_block_compiles_against_the_public_api(string location)
    {
        DocBlock block = DocBlocks.CSharpBlocks().Single(b => b.Location == location);

        IReadOnlyList<string> errors = DocSnippetCompiler.Errors(block, out _, out _);

        Assert.True(errors.Count == 0, $"the C# block at {location} does not compile:\n" + string.Join('\n', errors));
    }

    [Theory]
    [MemberData(nameof(CSharpBlocks))]
    public void Every_csharp_block_disposes_what_it_creates(string location)
    {
        DocBlock block = DocBlocks.CSharpBlocks().Single(b => b.Location == location);
        Assert.Empty(DocSnippetCompiler.Errors(block, out Compilation compilation, out SyntaxTree tree));

        IReadOnlyList<string> undisposed = DocSnippetCompiler.Undisposed(block, compilation, tree);

        Assert.True(undisposed.Count == 0, string.Join('\n', undisposed));
    }

    [Fact]
    public void A_block_that_misses_a_using_is_reported_with_its_file_and_line()
    {
        var block = new DocBlock("docs/example.md", 40, "csharp", "using Netmem;\n\nvar x = 1;\nDmabufBindingHandle? h = null;\n");

        IReadOnlyList<string> errors = DocSnippetCompiler.Errors(block, out _, out _);

        string error = Assert.Single(errors);
        Assert.StartsWith("docs/example.md:43: CS0246:", error, StringComparison.Ordinal);
        Assert.Contains("DmabufBindingHandle", error, StringComparison.Ordinal);
    }

    [Fact]
    public void A_block_that_creates_a_socket_without_disposing_it_is_reported()
    {
        var block = new DocBlock("docs/example.md", 10, "csharp", "using Netmem.Devmem;\n\nvar socket = new DevmemSocket(FlowKey.Udp(9000));\nusing var other = new DevmemSocket(FlowKey.Udp(9001));\n");
        Assert.Empty(DocSnippetCompiler.Errors(block, out Compilation compilation, out SyntaxTree tree));

        string finding = Assert.Single(DocSnippetCompiler.Undisposed(block, compilation, tree));

        Assert.StartsWith("docs/example.md:12: 'socket' (DevmemSocket)", finding, StringComparison.Ordinal);
    }

    [Fact]
    public void Every_link_in_the_readme_and_the_docs_points_into_the_repository()
    {
        List<string> broken = [];
        foreach (string file in DocBlocks.MarkdownFiles())
        {
            string text = File.ReadAllText(Path.Combine(DocBlocks.Root, file));
            string dir = Path.GetDirectoryName(Path.Combine(DocBlocks.Root, file))!;
            foreach (Match m in MarkdownLink().Matches(StripCode(text)))
            {
                string target = m.Groups[1].Value.Split('#')[0];
                if (target.Length == 0)
                {
                    continue;
                }

                if (target.Contains("://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal))
                {
                    broken.Add($"{file}: {target} points outside the repository");
                }
                else if (!File.Exists(Path.Combine(dir, target)) && !Directory.Exists(Path.Combine(dir, target)))
                {
                    broken.Add($"{file}: {target} does not exist");
                }
            }
        }

        Assert.True(broken.Count == 0, string.Join('\n', broken));
    }

    [Fact]
    public void Every_source_path_the_docs_name_exists()
    {
        List<string> missing = [];
        foreach (string file in DocBlocks.MarkdownFiles().Where(f => f.StartsWith("docs/", StringComparison.Ordinal)))
        {
            foreach (Match m in RepositoryPath().Matches(File.ReadAllText(Path.Combine(DocBlocks.Root, file))))
            {
                string path = m.Groups[1].Value;
                if (!File.Exists(Path.Combine(DocBlocks.Root, path)) && !Directory.Exists(Path.Combine(DocBlocks.Root, path)))
                {
                    missing.Add($"{file}: {path}");
                }
            }
        }

        Assert.True(missing.Count == 0, "paths named in the docs that do not exist:\n" + string.Join('\n', missing));
    }

    [Fact]
    public void The_architecture_maps_each_kernel_file_and_concept_to_netmem()
    {
        string text = File.ReadAllText(Path.Combine(DocBlocks.Root, "docs/architecture.md"));
        string map = text[text.IndexOf("## Kernel to Netmem map", StringComparison.Ordinal)..];

        foreach (string kernel in new[] { "page_pool.c", "netmem.h", "devmem.c", "netdev_rx_queue.c", "genalloc.c", "netdev netlink family" })
        {
            Assert.Contains(kernel, map, StringComparison.Ordinal);
        }
    }

    /// <summary>Drops fenced blocks and inline code, where brackets are code, not links.</summary>
    private static string StripCode(string markdown) => InlineCode().Replace(FencedBlock().Replace(markdown, string.Empty), string.Empty);

    [GeneratedRegex(@"\]\(([^)\s]+)\)")]
    private static partial Regex MarkdownLink();

    [GeneratedRegex(@"`((?:src|tests|bench|samples|docs)/[A-Za-z0-9_./-]+)`")]
    private static partial Regex RepositoryPath();

    [GeneratedRegex(@"(?ms)^```.*?^```")]
    private static partial Regex FencedBlock();

    [GeneratedRegex(@"`[^`\n]*`")]
    private static partial Regex InlineCode();
}
