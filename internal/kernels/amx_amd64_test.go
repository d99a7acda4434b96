package kernels

import (
	"bytes"
	"debug/elf"
	"debug/gosym"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// amxATT is a Go register's AT&T name.
func amxATT(r string) string {
	if n, ok := map[string]string{"AX": "rax", "CX": "rcx", "DX": "rdx", "BX": "rbx", "SP": "rsp", "BP": "rbp", "SI": "rsi", "DI": "rdi"}[r]; ok {
		return "%" + n
	}
	return "%" + strings.ToLower(r)
}

// amxWant is one instruction the disassembly must show: its text (mnemonic and operands as
// objdump prints them), or for a branch its mnemonic and the label it must reach.
type amxWant struct {
	text, branch, label string
	labelAt             int // for a label: the index of the instruction it marks
}

// amxExpected renders the kernel's operation list as the instructions objdump must decode from
// the assembled function, in order; a label op yields an entry with label set and no text.
func amxExpected(prog []amxOp) []amxWant {
	var w []amxWant
	ins := func(f string, a ...any) { w = append(w, amxWant{text: fmt.Sprintf(f, a...)}) }
	mem := func(op amxOp) string {
		d := ""
		if op.Imm != 0 || op.R == "BP" || op.R == "R13" {
			d = fmt.Sprintf("0x%x", op.Imm)
		}
		return fmt.Sprintf("%s(%s,%s,1)", d, amxATT(op.R), amxATT(op.S))
	}
	for _, op := range prog {
		switch op.Kind {
		case "arg": // the arguments start above the return address
			ins("mov 0x%x(%%rsp),%s", 8+op.Imm, amxATT(op.R))
		case "mov":
			ins("mov %s,%s", amxATT(op.S), amxATT(op.R))
		case "shl":
			ins("shl $0x%x,%s", op.Imm, amxATT(op.R))
		case "add":
			ins("add %s,%s", amxATT(op.S), amxATT(op.R))
		case "addi":
			ins("add $0x%x,%s", op.Imm, amxATT(op.R))
		case "ldq":
			d := ""
			if op.Imm != 0 || op.S == "BP" || op.S == "R13" { // these bases are encoded with a displacement
				d = fmt.Sprintf("0x%x", op.Imm)
			}
			ins("mov %s(%s),%s", d, amxATT(op.S), amxATT(op.R))
		case "label":
			w = append(w, amxWant{label: op.Label})
		case "jz":
			ins("test %s,%s", amxATT(op.R), amxATT(op.R))
			w = append(w, amxWant{branch: "je", label: op.Label})
		case "loop":
			ins("dec %s", amxATT(op.R))
			w = append(w, amxWant{branch: "jne", label: op.Label})
		case "looparg": // the arguments start above the return address
			ins("decq 0x%x(%%rsp)", 8+op.Imm)
			w = append(w, amxWant{branch: "jne", label: op.Label})
		case "ldtilecfg":
			ins("lea <amxTileConfig>,%s", amxATT(op.R))
			d := ""
			if op.R == "BP" || op.R == "R13" { // these bases are encoded with a displacement
				d = "0x0"
			}
			ins("ldtilecfg %s(%s)", d, amxATT(op.R))
		case "tileload":
			ins("tileloadd %s,%%tmm%d", mem(op), op.T[0])
		case "tilestore":
			ins("tilestored %%tmm%d,%s", op.T[0], mem(op))
		case "tdpbf16ps":
			ins("tdpbf16ps %%tmm%d,%%tmm%d,%%tmm%d", op.T[2], op.T[1], op.T[0])
		case "tilerelease":
			ins("tilerelease")
		case "ret":
			ins("ret")
		default:
			panic("unknown operation " + op.Kind)
		}
	}
	return w
}

// amxKernelCode returns the machine code of the assembly function name in this test binary and its address,
// found through the binary's Go symbol table (.gopclntab, kept when the binary is stripped), and
// a reader of the bytes at any address of the binary's sections.
func amxKernelCode(t *testing.T, name string) (code []byte, entry uint64, at func(addr uint64, n int) []byte) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, err := elf.Open(exe)
	if err != nil {
		t.Skipf("the test binary is not ELF (%v): the AMX kernel's byte encodings are not checked", err)
	}
	t.Cleanup(func() { f.Close() })
	pcln, text := f.Section(".gopclntab"), f.Section(".text")
	if pcln == nil || text == nil {
		t.Fatalf("%s has no .gopclntab or .text section", exe)
	}
	data, err := pcln.Data()
	if err != nil {
		t.Fatal(err)
	}
	tab, err := gosym.NewTable(nil, gosym.NewLineTable(data, text.Addr))
	if err != nil {
		t.Fatal(err)
	}
	at = func(addr uint64, n int) []byte {
		for _, s := range f.Sections {
			if s.Type == elf.SHT_PROGBITS && addr >= s.Addr && addr+uint64(n) <= s.Addr+s.Size {
				b := make([]byte, n)
				if _, err := s.ReadAt(b, int64(addr-s.Addr)); err != nil {
					t.Fatal(err)
				}
				return b
			}
		}
		t.Fatalf("no section holds [%#x, %#x)", addr, addr+uint64(n))
		return nil
	}
	for _, fn := range tab.Funcs {
		// The assembly, not the ABI wrapper the compiler generates under the same name.
		if file, _, _ := tab.PCToLine(fn.Entry); fn.BaseName() == name && strings.HasSuffix(file, "amx_amd64.s") {
			return at(fn.Entry, int(fn.End-fn.Entry)), fn.Entry, at
		}
	}
	t.Fatalf("%s (amx_amd64.s) not in %s's symbol table", name, exe)
	return nil, 0, nil
}

// TestAMXAsmBytes disassembles amxTiles as built into this test binary with binutils'
// objdump (Go's assembler has no AMX mnemonics: the tile instructions are BYTE directives) and
// checks every instruction against the operation list the simulator runs: the AMX encodings,
// the scalar instructions around them, every branch target, and the 64 bytes LDTILECFG loads.
func TestAMXAsmBytes(t *testing.T) {
	objdump, err := exec.LookPath("objdump")
	if err != nil {
		t.Skip("binutils objdump not found: the AMX kernel's byte encodings are not checked")
	}
	disasm := func(code []byte, entry uint64) string {
		bin := filepath.Join(t.TempDir(), "amx.bin")
		if err := os.WriteFile(bin, code, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(objdump, "-D", "--no-show-raw-insn", "-b", "binary", "-m", "i386:x86-64",
			fmt.Sprintf("--adjust-vma=%#x", entry), bin).CombinedOutput()
		if err != nil {
			t.Fatalf("objdump: %v\n%s", err, out)
		}
		return string(out)
	}
	if !strings.Contains(disasm([]byte{0xc4, 0xe2, 0x78, 0x49, 0xc0}, 0), "tilerelease") {
		t.Skip("objdump does not know AMX (binutils 2.36 on): the AMX kernel's byte encodings are not checked")
	}
	for _, k := range []struct {
		name string
		prog []amxOp
	}{{"amxTiles", amxKernelProgram()}} {
		t.Run(k.name, func(t *testing.T) { amxCheckAsm(t, disasm, k.name, k.prog) })
	}
}

// amxCheckAsm checks the assembly function name against its operation list prog (see
// TestAMXAsmBytes).
func amxCheckAsm(t *testing.T, disasm func([]byte, uint64) string, name string, prog []amxOp) {
	code, entry, at := amxKernelCode(t, name)
	out := disasm(code, entry)
	type insn struct {
		addr, target uint64
		text         string
	}
	var got []insn
	lineRE := regexp.MustCompile(`^\s*([0-9a-f]+):\s+(\S.*)$`)
	hex := func(s string) uint64 {
		v, _ := strconv.ParseUint(strings.TrimPrefix(s, "0x"), 16, 64)
		return v
	}
	for _, line := range strings.Split(out, "\n") {
		m := lineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		text, comment, _ := strings.Cut(m[2], "#")
		f := strings.Fields(text)
		in := insn{addr: hex(m[1]), text: strings.Join(f, " ")}
		switch {
		case f[0] == "lea" && strings.Contains(f[1], "(%rip)"):
			in.text = "lea <amxTileConfig>," + strings.Split(f[1], ",")[1]
			in.target = hex(strings.TrimSpace(comment))
		case f[0] == "je" || f[0] == "jne" || f[0] == "jmp":
			in.text, in.target = f[0], hex(f[1])
		}
		got = append(got, in)
	}
	want := amxExpected(prog)
	labels := map[string]uint64{}
	var branches []int
	i := 0
	for _, w := range want {
		if w.text == "" && w.branch == "" { // a label: the next instruction's address
			if i < len(got) {
				labels[w.label] = got[i].addr
			}
			continue
		}
		if i >= len(got) {
			t.Fatalf("%s ends before %q:\n%s", name, w.text+w.branch, out)
		}
		g := got[i]
		switch {
		case w.branch != "":
			if g.text != w.branch {
				t.Errorf("instruction %d at %#x: %q, want %s to %s", i, g.addr, g.text, w.branch, w.label)
			}
			got[i].text = w.label // the label it must reach, checked below
			branches = append(branches, i)
		case g.text != w.text && !(strings.HasPrefix(w.text, "mov $") && g.text == w.text+"d"):
			t.Errorf("instruction %d at %#x: %q, want %q", i, g.addr, g.text, w.text)
		case strings.HasPrefix(w.text, "lea <amxTileConfig>"):
			if cfg := amxTileConfig(); !bytes.Equal(at(g.target, len(cfg)), cfg[:]) {
				t.Errorf("the tile configuration at %#x is % x, want % x", g.target, at(g.target, len(cfg)), cfg)
			}
		}
		i++
	}
	for _, g := range got[i:] { // the rest is the padding to the next function
		if g.text != "int3" {
			t.Errorf("unexpected instruction after the kernel's RET at %#x: %q", g.addr, g.text)
		}
	}
	for _, b := range branches {
		if g := got[b]; g.target != labels[g.text] {
			t.Errorf("branch at %#x goes to %#x, label %s is at %#x", g.addr, g.target, g.text, labels[g.text])
		}
	}
	if !t.Failed() {
		t.Logf("%d instructions (%d bytes) of %s decode as the program the simulator runs", i, len(code), name)
	}
}

// amxOff runs f with AMX off and the VDPBF16PS kernels forced on, which round their inputs to
// bf16 as AMX does (where they do not pay, the bf16 weights would be widened and x not rounded).
func amxOff(f func()) {
	sf := bf16Force
	defer func() { useAMX, bf16Force = true, sf }()
	useAMX, bf16Force = false, 1
	f()
}

// TestLinearBF16AMX runs LinearBF16 on AMX hardware against the plain-Go AMX twin and float64,
// also on 8 goroutines at once under GC pressure (tile state across scheduling and signals).
func TestLinearBF16AMX(t *testing.T) {
	amxNeedsCPU(t)
	if !amxOn() {
		t.Skip("AMX is used only with the AVX-512 path (off here, e.g. GODEBUG=cpu.avx512f=off)")
	}
	r := rand.New(rand.NewSource(23))
	worst := map[string]float64{}
	exact, total := 0, 0
	for i, s := range append(amxLinearShapes, bf16LinearShapes...) {
		rows, in, out := max(s[0], amxMinRows), s[1], s[2]
		x, wf := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in)
		wh, wr := bf16Rounded(wf)
		_, xr := bf16Rounded(x)
		var bias []float32
		if i%2 == 1 {
			bias = sgemmRandSlice(r, out)
		}
		ref := sgemmRef(false, true, rows, out, in, 1, xr, in, wr, in, 0, nil, out)
		for j := range ref {
			if bias != nil {
				ref[j] += float64(bias[j%out])
			}
		}
		twin, avx := make([]float32, rows*out), make([]float32, rows*out)
		linearAMXGeneric(x, rows, in, wh, out, bias, twin)
		amxOff(func() { LinearBF16(x, rows, in, wh, out, bias, avx) })
		twin64 := make([]float64, len(twin))
		for j, v := range twin {
			twin64[j] = float64(v)
		}
		var wg sync.WaitGroup
		ys := make([][]float32, 8)
		for g := range ys {
			ys[g] = make([]float32, rows*out)
			wg.Add(1)
			go func(y []float32) {
				defer wg.Done()
				for rep := 0; rep < 3; rep++ {
					_ = make([]byte, 1<<20) // garbage, so the GC and its signals run meanwhile
					LinearBF16(x, rows, in, wh, out, bias, y)
				}
			}(ys[g])
		}
		wg.Wait()
		for _, y := range ys {
			for j := range y {
				total++
				if y[j] == twin[j] {
					exact++
				}
			}
			worst["vs float64 on the rounded inputs"] = math.Max(worst["vs float64 on the rounded inputs"], sgemmRelErr(y, out, ref, rows, out))
			worst["vs the plain-Go AMX twin"] = math.Max(worst["vs the plain-Go AMX twin"], sgemmRelErr(y, out, twin64, rows, out))
			worst["vs the AVX512-BF16 path"] = math.Max(worst["vs the AVX512-BF16 path"], amxRel(y, avx))
		}
	}
	t.Logf("%d of %d values equal the plain-Go twin's bit for bit", exact, total)
	// Measured on a Xeon with AMX: 4.4e-7 against the VDPBF16PS kernels (another order of sums).
	logWorst(t, "LinearBF16 on AMX", "largest relative", worst, 4e-6)
}

// TestConv2DBF16AMX runs Conv2DBF16 on AMX hardware against the AVX512-BF16 path (the same
// rounded inputs, another order of sums) and against plain-Go float32 on the rounded inputs.
func TestConv2DBF16AMX(t *testing.T) {
	amxNeedsCPU(t)
	if !amxOn() {
		t.Skip("AMX is used only with the AVX-512 path (off here, e.g. GODEBUG=cpu.avx512f=off)")
	}
	r := rand.New(rand.NewSource(26))
	worst := map[string]float64{}
	for _, p := range amxConvShapes {
		oh, ow := p.OutSize()
		x, wf, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*p.KH*p.KW), sgemmRandSlice(r, p.K)
		wh, wr := bf16Rounded(wf)
		_, xr := bf16Rounded(x)
		got, avx, ref := make([]float32, p.N*p.K*oh*ow), make([]float32, p.N*p.K*oh*ow), make([]float32, p.N*p.K*oh*ow)
		Conv2DBF16(p, x, wh, bias, got)
		amxOff(func() { Conv2DBF16(p, x, wh, bias, avx) })
		conv2DGeneric(p, xr, wr, bias, ref)
		worst["vs the AVX512-BF16 path"] = math.Max(worst["vs the AVX512-BF16 path"], amxRel(got, avx))
		worst["vs plain Go on the rounded inputs"] = math.Max(worst["vs plain Go on the rounded inputs"], amxRel(got, ref))
	}
	logWorst(t, "Conv2DBF16 on AMX", "largest relative", worst, 4e-6)
}
