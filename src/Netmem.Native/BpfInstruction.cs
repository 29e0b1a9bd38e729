using System.Runtime.InteropServices;

namespace Netmem.Native;

/// <summary>
/// One eBPF instruction (<c>struct bpf_insn</c>): an opcode, destination and source registers
/// packed in one byte, a signed 16-bit offset and a signed 32-bit immediate.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 8)]
internal readonly struct BpfInstruction : IEquatable<BpfInstruction>
{
    /// <summary>Creates an instruction from its fields.</summary>
    public BpfInstruction(byte code, byte dst, byte src, short offset, int immediate)
    {
        Code = code;
        Registers = (byte)((dst & 0xF) | ((src & 0xF) << 4));
        Offset = offset;
        Immediate = immediate;
    }

    /// <summary>The opcode: class, size or source, and mode or operation.</summary>
    public byte Code { get; }

    /// <summary>Destination register in the low nibble, source register in the high nibble.</summary>
    public byte Registers { get; }

    /// <summary>Memory offset or jump distance.</summary>
    public short Offset { get; }

    /// <summary>The immediate operand.</summary>
    public int Immediate { get; }

    /// <summary>The destination register.</summary>
    public int Dst => Registers & 0xF;

    /// <summary>The source register.</summary>
    public int Src => Registers >> 4;

    /// <inheritdoc/>
    public bool Equals(BpfInstruction other) => Code == other.Code && Registers == other.Registers && Offset == other.Offset && Immediate == other.Immediate;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is BpfInstruction i && Equals(i);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Code, Registers, Offset, Immediate);

    /// <summary>Field-wise equality.</summary>
    public static bool operator ==(BpfInstruction left, BpfInstruction right) => left.Equals(right);

    /// <summary>Field-wise inequality.</summary>
    public static bool operator !=(BpfInstruction left, BpfInstruction right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => $"{{code 0x{Code:x2}, dst r{Dst}, src r{Src}, off {Offset}, imm {Immediate}}}";
}

/// <summary>
/// Builds an eBPF program in memory, one instruction per call, with the encodings of
/// <c>include/uapi/linux/bpf.h</c> (<c>BPF_LDX|BPF_MEM</c>, <c>BPF_LD|BPF_IMM|BPF_DW</c>,
/// <c>BPF_ALU64|BPF_MOV|BPF_K</c>, <c>BPF_JMP|BPF_CALL</c>, <c>BPF_JMP|BPF_EXIT</c>, conditional
/// jumps). Enough for the XDP redirect program, and meant to grow with the programs Netmem needs.
/// </summary>
internal sealed class BpfProgramBuilder
{
    /// <summary>Registers: r0 holds return values, r1..r5 arguments, r10 the frame pointer.</summary>
    public const byte R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R5 = 5, R10 = 10;

    /// <summary><c>BPF_PSEUDO_MAP_FD</c>: the immediate of a 64-bit load is a map descriptor.</summary>
    public const byte PseudoMapFd = 1;

    /// <summary><c>BPF_FUNC_redirect_map</c>.</summary>
    public const int HelperRedirectMap = 51;

    private const byte ClassLd = 0x00, ClassLdx = 0x01, ClassJmp = 0x05, ClassAlu64 = 0x07;
    private const byte SizeW = 0x00, SizeH = 0x08, SizeB = 0x10, SizeDw = 0x18;
    private const byte ModeImm = 0x00, ModeMem = 0x60;
    private const byte OpMov = 0xb0, OpCall = 0x80, OpExit = 0x90, OpJeq = 0x10, OpJne = 0x50, OpJa = 0x00;
    private const byte SrcK = 0x00;

    private readonly List<BpfInstruction> _instructions = [];

    /// <summary>Instructions so far (a 64-bit immediate load counts two).</summary>
    public int Count => _instructions.Count;

    /// <summary><c>dst = *(u{8·size}*)(src + offset)</c> for a size of 1, 2, 4 or 8 bytes.</summary>
    public BpfProgramBuilder LoadMemory(byte dst, byte src, short offset, int size = 4)
    {
        byte sz = size switch
        {
            1 => SizeB,
            2 => SizeH,
            4 => SizeW,
            8 => SizeDw,
            _ => throw new ArgumentOutOfRangeException(nameof(size), size, "1, 2, 4 or 8 bytes"),
        };
        return Add(new BpfInstruction((byte)(ClassLdx | ModeMem | sz), dst, src, offset, 0));
    }

    /// <summary><c>dst = map</c>: the two-slot 64-bit load of a map descriptor.</summary>
    public BpfProgramBuilder LoadMapFd(byte dst, int mapFd)
    {
        Add(new BpfInstruction(ClassLd | ModeImm | SizeDw, dst, PseudoMapFd, 0, mapFd));
        return Add(new BpfInstruction(0, 0, 0, 0, 0));
    }

    /// <summary><c>dst = immediate</c> (64-bit move of a sign-extended 32-bit value).</summary>
    public BpfProgramBuilder MoveImmediate(byte dst, int immediate) =>
        Add(new BpfInstruction(ClassAlu64 | OpMov | SrcK, dst, 0, 0, immediate));

    /// <summary>Calls helper <paramref name="helper"/>; arguments in r1..r5, result in r0.</summary>
    public BpfProgramBuilder Call(int helper) => Add(new BpfInstruction(ClassJmp | OpCall, 0, 0, 0, helper));

    /// <summary>Returns r0.</summary>
    public BpfProgramBuilder Exit() => Add(new BpfInstruction(ClassJmp | OpExit, 0, 0, 0, 0));

    /// <summary>Skips <paramref name="skip"/> instructions when <c>dst == immediate</c>.</summary>
    public BpfProgramBuilder JumpIfEqual(byte dst, int immediate, short skip) =>
        Add(new BpfInstruction(ClassJmp | OpJeq | SrcK, dst, 0, skip, immediate));

    /// <summary>Skips <paramref name="skip"/> instructions when <c>dst != immediate</c>.</summary>
    public BpfProgramBuilder JumpIfNotEqual(byte dst, int immediate, short skip) =>
        Add(new BpfInstruction(ClassJmp | OpJne | SrcK, dst, 0, skip, immediate));

    /// <summary>Skips <paramref name="skip"/> instructions unconditionally.</summary>
    public BpfProgramBuilder Jump(short skip) => Add(new BpfInstruction(ClassJmp | OpJa, 0, 0, skip, 0));

    /// <summary>Appends an instruction as given.</summary>
    public BpfProgramBuilder Add(BpfInstruction instruction)
    {
        _instructions.Add(instruction);
        return this;
    }

    /// <summary>The program.</summary>
    public BpfInstruction[] ToArray() => [.. _instructions];

    /// <summary>
    /// The XDP program that hands each frame to the AF_XDP socket of its receive queue:
    /// <c>return bpf_redirect_map(&amp;xsks, ctx-&gt;rx_queue_index, XDP_PASS);</c>. A queue
    /// without a socket in the map falls back to <c>XDP_PASS</c> (the low bits of the flags
    /// argument are the action on a failed lookup), so the kernel's stack still sees its traffic.
    /// </summary>
    public static BpfInstruction[] XskRedirect(int xskMapFd) => new BpfProgramBuilder()
        .LoadMemory(R2, R1, XdpMdRxQueueIndex)
        .LoadMapFd(R1, xskMapFd)
        .MoveImmediate(R3, XdpPass)
        .Call(HelperRedirectMap)
        .Exit()
        .ToArray();

    /// <summary><c>offsetof(struct xdp_md, rx_queue_index)</c>.</summary>
    public const short XdpMdRxQueueIndex = 16;

    /// <summary><c>XDP_PASS</c>.</summary>
    public const int XdpPass = 2;
}
