package kernels

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestBF16AsmBytes decodes every byte-encoded instruction of bf16_amd64.s and
// attention512_amd64.s (Go's assembler has no AVX512-BF16 mnemonics, so asmgen emits them as
// BYTE directives) with binutils' objdump and checks that it reads the instruction named in the
// line's comment.
func TestBF16AsmBytes(t *testing.T) {
	objdump, err := exec.LookPath("objdump")
	if err != nil {
		t.Skip("binutils objdump not found: byte encodings not checked")
	}
	for _, file := range []string{"bf16_amd64.s", "attention512_amd64.s"} {
		t.Run(file, func(t *testing.T) { checkAsmBytes(t, objdump, file) })
	}
}

// checkAsmBytes is TestBF16AsmBytes on one file.
func checkAsmBytes(t *testing.T, objdump, file string) {
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	byteRE := regexp.MustCompile(`BYTE \$0x([0-9a-f]{2})`)
	var code []byte
	var want []string
	for _, line := range strings.Split(string(src), "\n") {
		if !strings.Contains(line, "BYTE $") {
			continue
		}
		ins, comment, ok := strings.Cut(line, "//")
		if !ok {
			t.Fatalf("BYTE line without the instruction in a comment: %q", line)
		}
		for _, m := range byteRE.FindAllStringSubmatch(ins, -1) {
			b, _ := strconv.ParseUint(m[1], 16, 8)
			code = append(code, byte(b))
		}
		// Go operand order is AT&T's: "VDPBF16PS Z0, Z2, Z8" is "vdpbf16ps %zmm0,%zmm2,%zmm8".
		f := strings.Fields(strings.TrimSpace(comment))
		ops := strings.Split(strings.Join(f[1:], ""), ",")
		for i, o := range ops {
			ops[i] = "%" + map[byte]string{'X': "xmm", 'Y': "ymm", 'Z': "zmm"}[o[0]] + o[1:]
		}
		want = append(want, strings.ToLower(f[0])+" "+strings.Join(ops, ","))
	}
	if len(want) == 0 {
		t.Fatal("no BYTE-encoded instructions found")
	}
	bin := filepath.Join(t.TempDir(), "code.bin")
	if err := os.WriteFile(bin, code, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(objdump, "-D", "-b", "binary", "-m", "i386:x86-64", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("objdump: %v\n%s", err, out)
	}
	var got []string
	insRE := regexp.MustCompile(`^\s*[0-9a-f]+:\t(?:[0-9a-f]{2} )+\s*\t(.*)$`)
	for _, line := range strings.Split(string(out), "\n") {
		if m := insRE.FindStringSubmatch(line); m != nil {
			got = append(got, strings.Join(strings.Fields(m[1]), " "))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("objdump decoded %d instructions, the comments name %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("instruction %d: bytes decode as %q, comment says %q", i, got[i], want[i])
		}
	}
	t.Logf("%d byte-encoded instructions decode as their comments say", len(want))
}
