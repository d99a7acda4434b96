package main

import (
	"fmt"
	"strings"
)

// AMX (Advanced Matrix Extensions) bf16 GEMM kernel.
//
// The kernel is described once, as a list of operations (amxOp), and written out twice from that
// list: as Go assembly (amx_amd64.s, with `go run . amx`) and as a Go table of the same operations
// (amx_program_test.go, with `go run . amxprog`) that package kernels' test simulator interprets on
// Go slices with bounds checks (amx_sim_test.go). A machine without AMX can so run, in tests, the
// very instruction sequence and tile configuration the assembly holds: addressing, strides, the
// loop and the tile shapes are checked there, and only the byte encodings remain, which the tests
// check by disassembling the built function with binutils' objdump.
//
// Go's assembler has no AMX mnemonics: LDTILECFG, TILELOADD, TILESTORED, TDPBF16PS and
// TILERELEASE are emitted as BYTE directives with the instruction, in Go operand order, in a
// comment. Configuration, compute and release happen inside the one assembly call, so goroutine
// scheduling never sees live tiles.

// amxOp is one operation of a tile program. Scalar registers are Go assembler names (SI, R10);
// tiles are numbered 0..7 (TMM0..TMM7). The kinds:
//
//	arg          MOVQ Arg+Imm(FP), R (load an argument)
//	mov          MOVQ S, R
//	shl          SHLQ $Imm, R
//	add          ADDQ S, R
//	ldq          MOVQ Imm(S), R (load a 64-bit integer)
//	addi         ADDQ $Imm, R
//	label        Label:
//	jz           TESTQ R, R; JZ Label
//	loop         DECQ R; JNZ Label
//	looparg      DECQ Arg+Imm(FP); JNZ Label (a count kept in the argument)
//	ldtilecfg    LEAQ the tile configuration into R; LDTILECFG (R)
//	tileload     TILELOADD Imm(R)(S*1), TMM T[0]: tile row i from R+Imm+i·S
//	tilestore    TILESTORED TMM T[0], Imm(R)(S*1)
//	tdpbf16ps    TMM T[0] += TMM T[1] (rows × bf16 pairs) · TMM T[2] (pair steps × columns)
//	tilerelease  TILERELEASE
//	ret          RET
type amxOp struct {
	Kind  string
	R, S  string // registers: R the destination or base, S the source or stride
	T     [3]int // tiles
	Imm   int    // immediate, displacement or argument frame offset
	Label string // branch target or label name
	Arg   string // argument name (Kind "arg")
}

// amxTileRows and amxTileColsB are the shape of every tile of the kernel: 16 rows of 64 bytes,
// the largest palette 1 allows (16 fp32 accumulators, 16 bf16 pairs, or 16 columns of pairs).
const (
	amxTileRows  = 16
	amxTileColsB = 64
)

// amxConfig returns the 64-byte LDTILECFG operand for palette 1 (Intel SDM, "Tile
// Configuration"): byte 0 palette_id, byte 1 start_row, 2–15 reserved (zero), bytes 16+2i and
// 17+2i tile i's bytes per row (little endian), byte 48+i tile i's rows; tiles 0..7 all 16×64.
func amxConfig() [64]byte {
	var c [64]byte
	c[0] = 1
	for i := 0; i < 8; i++ {
		c[16+2*i] = amxTileColsB & 0xff
		c[17+2*i] = amxTileColsB >> 8
		c[48+i] = amxTileRows
	}
	return c
}

// amxKernelName and amxKernelArgs are the tile kernel's Go declaration:
//
//	func amxTiles(calls *amxCall, n int)
const amxKernelName = "amxTiles"

var amxKernelArgs = []string{"calls", "n"}

// amxCallFields are the 64-bit words of one call (package kernels' amxCall), in order.
var amxCallFields = []string{"a", "lda", "b0", "b1", "boff", "bs", "c0", "c1", "ldc", "i0", "i1", "ldi", "kt", "bmax"}

// amxKernelProgram runs n calls of a 32×32 tile product under one tile configuration, loaded
// and released once (the attention's short products, each in a call of its own, took 6% longer).
// Call i is the 112 bytes at calls+112·i (its last word, the largest offset, is for the callers'
// bounds checks): C = I + A·B for A 32 rows of kt·16 bf16 pairs (row stride lda pairs; a k tile
// is 16 pairs, 64 bytes, along the rows) and B two 16-column tiles read in place: k tile t's tile
// of column block j is the 16 rows at bj + boff[t] (bytes), bs bytes apart. The accumulators
// start as I (column block j's rows at ij, ldi floats apart: the C so far, a bias tile, or with
// ldi 0 one row for all) and end in C (column block j's rows at cj, ldc floats apart); kt ≥ 1.
// Tiles: TMM0..TMM3 the accumulators C[rows 16i.., cols 16j..] = TMM(2i+j), TMM4/TMM5 the A
// tiles of rows 0–15/16–31, TMM6/TMM7 the B tiles of column blocks 0/1. Registers: R13 the call
// (the calls left are counted down in the argument n: R14 and R15 are not free), SI, BX the A
// row blocks (R8 = lda bytes), DI, R11 the B bases, R9 = bs, DX the offsets, CX the k tiles left
// (or a stride), AX the offset (in the loop) or a stride, R10, R12 the addresses of B (in the
// loop) or of C and I.
func amxKernelProgram() []amxOp {
	arg := func(r, name string) amxOp {
		for i, a := range amxKernelArgs {
			if a == name {
				return amxOp{Kind: "arg", R: r, Arg: name, Imm: 8 * i}
			}
		}
		panic("no argument " + name)
	}
	field := func(r, name string) amxOp {
		for i, f := range amxCallFields {
			if f == name {
				return amxOp{Kind: "ldq", R: r, S: "R13", Imm: 8 * i}
			}
		}
		panic("no field " + name)
	}
	// cTiles loads or stores the four accumulators at the column bases of the fields p0, p1
	// with the row stride of the field ld (floats): rows 16.. are 16 strides further on.
	cTiles := func(kind, p0, p1, ld string) []amxOp {
		return []amxOp{
			field("R10", p0), field("R12", p1), field("AX", ld), {Kind: "shl", R: "AX", Imm: 2},
			{Kind: kind, T: [3]int{0}, R: "R10", S: "AX"}, {Kind: kind, T: [3]int{1}, R: "R12", S: "AX"},
			{Kind: "mov", R: "CX", S: "AX"}, {Kind: "shl", R: "CX", Imm: 4},
			{Kind: "add", R: "R10", S: "CX"}, {Kind: "add", R: "R12", S: "CX"},
			{Kind: kind, T: [3]int{2}, R: "R10", S: "AX"}, {Kind: kind, T: [3]int{3}, R: "R12", S: "AX"},
		}
	}
	p := []amxOp{
		arg("CX", "n"),
		{Kind: "jz", R: "CX", Label: "done"}, // no call: no tile touched
		{Kind: "ldtilecfg", R: "R13"},
		arg("R13", "calls"),
		{Kind: "label", Label: "call"},
		field("SI", "a"), field("R8", "lda"), {Kind: "shl", R: "R8", Imm: 2},
		field("DI", "b0"), field("R11", "b1"), field("R9", "bs"), field("DX", "boff"),
		// BX = SI + 16·lda bytes: the second row block of A.
		{Kind: "mov", R: "BX", S: "R8"}, {Kind: "shl", R: "BX", Imm: 4}, {Kind: "add", R: "BX", S: "SI"},
	}
	p = append(p, cTiles("tileload", "i0", "i1", "ldi")...)
	p = append(p, field("CX", "kt"), amxOp{Kind: "label", Label: "loop"},
		amxOp{Kind: "ldq", R: "AX", S: "DX"},
		amxOp{Kind: "addi", R: "DX", Imm: 8},
		amxOp{Kind: "mov", R: "R10", S: "DI"}, amxOp{Kind: "add", R: "R10", S: "AX"},
		amxOp{Kind: "mov", R: "R12", S: "R11"}, amxOp{Kind: "add", R: "R12", S: "AX"},
		amxOp{Kind: "tileload", T: [3]int{4}, R: "SI", S: "R8"},
		amxOp{Kind: "tileload", T: [3]int{5}, R: "BX", S: "R8"},
		amxOp{Kind: "tileload", T: [3]int{6}, R: "R10", S: "R9"},
		amxOp{Kind: "tileload", T: [3]int{7}, R: "R12", S: "R9"},
		amxOp{Kind: "tdpbf16ps", T: [3]int{0, 4, 6}},
		amxOp{Kind: "tdpbf16ps", T: [3]int{1, 4, 7}},
		amxOp{Kind: "tdpbf16ps", T: [3]int{2, 5, 6}},
		amxOp{Kind: "tdpbf16ps", T: [3]int{3, 5, 7}},
		amxOp{Kind: "addi", R: "SI", Imm: amxTileColsB},
		amxOp{Kind: "addi", R: "BX", Imm: amxTileColsB},
		amxOp{Kind: "loop", R: "CX", Label: "loop"},
	)
	p = append(p, cTiles("tilestore", "c0", "c1", "ldc")...)
	nArg := arg("", "n")
	p = append(p, amxOp{Kind: "addi", R: "R13", Imm: 8 * len(amxCallFields)},
		amxOp{Kind: "looparg", Arg: "n", Imm: nArg.Imm, Label: "call"})
	return append(p, amxOp{Kind: "tilerelease"}, amxOp{Kind: "label", Label: "done"}, amxOp{Kind: "ret"})
}

// amxFile writes amx_amd64.s.
func amxFile(g *gen) {
	g.p("// Code generated by internal/kernels/asmgen. DO NOT EDIT.")
	g.p("")
	g.p("//go:build amd64")
	g.p("")
	g.p(`#include "textflag.h"`)
	g.p("")
	cfg := amxConfig()
	for q := 0; q < 8; q++ {
		var v uint64
		for i := 7; i >= 0; i-- {
			v = v<<8 | uint64(cfg[8*q+i])
		}
		g.p("DATA amxTileConfig<>+%d(SB)/8, $0x%016x", 8*q, v)
	}
	g.p("GLOBL amxTileConfig<>(SB), RODATA|NOPTR, $64")
	g.p("")
	g.p("// func %s(calls *amxCall, n int)", amxKernelName)
	g.p("TEXT ·%s(SB), NOSPLIT, $0-%d", amxKernelName, 8*len(amxKernelArgs))
	for _, op := range amxKernelProgram() {
		g.amxAsm(amxKernelName, op)
	}
}

// amxAsm emits one operation; labels are prefixed with the function name.
func (g *gen) amxAsm(fn string, op amxOp) {
	label := fn + "_" + op.Label
	switch op.Kind {
	case "arg":
		g.p("\tMOVQ %s+%d(FP), %s", op.Arg, op.Imm, op.R)
	case "mov":
		g.p("\tMOVQ %s, %s", op.S, op.R)
	case "shl":
		g.p("\tSHLQ $%d, %s", op.Imm, op.R)
	case "add":
		g.p("\tADDQ %s, %s", op.S, op.R)
	case "addi":
		g.p("\tADDQ $%d, %s", op.Imm, op.R)
	case "ldq":
		g.p("\tMOVQ %d(%s), %s", op.Imm, op.S, op.R)
	case "label":
		g.p("%s:", label)
	case "jz":
		g.p("\tTESTQ %s, %s", op.R, op.R)
		g.p("\tJZ %s", label)
	case "loop":
		g.p("\tDECQ %s", op.R)
		g.p("\tJNZ %s", label)
	case "looparg":
		g.p("\tDECQ %s+%d(FP)", op.Arg, op.Imm)
		g.p("\tJNZ %s", label)
	case "ldtilecfg":
		g.p("\tLEAQ amxTileConfig<>(SB), %s", op.R)
		g.bytes(amxMem(0x49, 0, 0, op.R, "", 0), "LDTILECFG (%s)", op.R)
	case "tileload":
		g.bytes(amxMem(0x4B, 3, op.T[0], op.R, op.S, op.Imm), "TILELOADD %s, TMM%d", amxAddr(op), op.T[0])
	case "tilestore":
		g.bytes(amxMem(0x4B, 2, op.T[0], op.R, op.S, op.Imm), "TILESTORED TMM%d, %s", op.T[0], amxAddr(op))
	case "tdpbf16ps":
		// VEX.128.F3.0F38.W0 5C 11:rrr:bbb: reg = T[0] (C), rm = T[1] (A), vvvv = T[2] (B).
		// In Go (AT&T) operand order: B, A, C.
		vvvv := byte(^op.T[2]&15) << 3
		g.bytes([]byte{0xC4, 0xE2, vvvv | 2, 0x5C, 0xC0 | byte(op.T[0])<<3 | byte(op.T[1])}, "TDPBF16PS TMM%d, TMM%d, TMM%d", op.T[2], op.T[1], op.T[0])
	case "tilerelease":
		g.bytes([]byte{0xC4, 0xE2, 0x78, 0x49, 0xC0}, "TILERELEASE")
	case "ret":
		g.p("\tRET")
	default:
		panic("amx: unknown operation " + op.Kind)
	}
}

// amxAddr is the Go syntax of a tile load's or store's memory operand.
func amxAddr(op amxOp) string {
	d := ""
	if op.Imm != 0 {
		d = fmt.Sprint(op.Imm)
	}
	return fmt.Sprintf("%s(%s)(%s*1)", d, op.R, op.S)
}

// amxRegNum is the x86 number of a general register by its Go name.
func amxRegNum(r string) int {
	for i, n := range []string{"AX", "CX", "DX", "BX", "SP", "BP", "SI", "DI"} {
		if r == n {
			return i
		}
	}
	var n int
	if _, err := fmt.Sscanf(r, "R%d", &n); err != nil || n < 8 || n > 15 {
		panic("amx: unknown register " + r)
	}
	return n
}

// amxMem encodes a VEX.128.0F38.W0 instruction with a memory operand at base+disp, optionally
// indexed by index·1 (the tile instructions' row stride; "" for none), reg the ModRM.reg field
// and pp the implied prefix (0 none, 1 66, 2 F3, 3 F2).
func amxMem(opcode byte, pp byte, reg int, base, index string, disp int) []byte {
	b := amxRegNum(base)
	x := 0
	if index != "" {
		if x = amxRegNum(index); x == 4 {
			panic("amx: SP cannot be a stride register")
		}
	}
	inv := func(v int) byte { return byte(^v>>3) & 1 }
	bs := []byte{0xC4, inv(reg)<<7 | inv(x)<<6 | inv(b)<<5 | 2, 0x78 | pp, opcode}
	mod := byte(0)
	switch {
	case disp == 0 && b&7 != 5: // BP and R13 need a displacement
	case disp >= -128 && disp < 128:
		mod = 1
	default:
		mod = 2
	}
	if index != "" || b&7 == 4 { // SIB byte; SP/R12 as base always need it
		idx := byte(4) // none
		if index != "" {
			idx = byte(x & 7)
		}
		bs = append(bs, mod<<6|byte(reg&7)<<3|4, idx<<3|byte(b&7))
	} else {
		bs = append(bs, mod<<6|byte(reg&7)<<3|byte(b&7))
	}
	switch mod {
	case 1:
		bs = append(bs, byte(int8(disp)))
	case 2:
		bs = append(bs, byte(disp), byte(disp>>8), byte(disp>>16), byte(disp>>24))
	}
	return bs
}

// bytes emits an instruction's encoding as BYTE directives with its mnemonic in a comment.
func (g *gen) bytes(bs []byte, format string, args ...any) {
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = fmt.Sprintf("BYTE $0x%02x", b)
	}
	g.p("\t%s // %s", strings.Join(parts, "; "), fmt.Sprintf(format, args...))
}

// amxProgFile writes amx_program_test.go: the kernel's operation list and tile configuration as Go
// values for the simulator in package kernels.
func amxProgFile(g *gen) {
	g.p("// Code generated by internal/kernels/asmgen. DO NOT EDIT.")
	g.p("")
	g.p("package kernels")
	g.p("")
	g.p("// amxKernelProgram is the operation list amx_amd64.s's %s was generated from (asmgen/amx.go).", amxKernelName)
	g.p("func amxKernelProgram() []amxOp {")
	g.p("\treturn []amxOp{")
	for _, op := range amxKernelProgram() {
		g.p("\t\t%s,", amxGoLit(op))
	}
	g.p("\t}")
	g.p("}")
	g.p("")
	g.p("// amxKernelArgs are %s's arguments in order.", amxKernelName)
	g.p("func amxKernelArgs() []string { return %#v }", amxKernelArgs)
	g.p("")
	g.p("// amxTileConfig is the LDTILECFG operand amx_amd64.s loads (amxTileConfig<>).")
	g.p("func amxTileConfig() [64]byte {")
	cfg := amxConfig()
	parts := make([]string, len(cfg))
	for i, b := range cfg {
		parts[i] = fmt.Sprint(b)
	}
	g.p("\treturn [64]byte{%s}", strings.Join(parts, ", "))
	g.p("}")
}

// amxGoLit is op as a Go composite literal, zero fields left out.
func amxGoLit(op amxOp) string {
	f := []string{fmt.Sprintf("Kind: %q", op.Kind)}
	if op.R != "" {
		f = append(f, fmt.Sprintf("R: %q", op.R))
	}
	if op.S != "" {
		f = append(f, fmt.Sprintf("S: %q", op.S))
	}
	if op.T != [3]int{} {
		f = append(f, fmt.Sprintf("T: [3]int{%d, %d, %d}", op.T[0], op.T[1], op.T[2]))
	}
	if op.Imm != 0 {
		f = append(f, fmt.Sprintf("Imm: %d", op.Imm))
	}
	if op.Label != "" {
		f = append(f, fmt.Sprintf("Label: %q", op.Label))
	}
	if op.Arg != "" {
		f = append(f, fmt.Sprintf("Arg: %q", op.Arg))
	}
	return "{" + strings.Join(f, ", ") + "}"
}
