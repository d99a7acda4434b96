package torchrand

import (
	"math"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// parseName splits "randn.seed42.1x4x9x13" into its seed and shape.
func parseName(t *testing.T, name string) (uint64, []int) {
	t.Helper()
	parts := strings.SplitN(name, ".", 3)
	seed, err := strconv.ParseUint(strings.TrimPrefix(parts[1], "seed"), 10, 64)
	if err != nil {
		t.Fatalf("%s: bad seed: %v", name, err)
	}
	var shape []int
	for _, s := range strings.Split(parts[2], "x") {
		d, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("%s: bad shape: %v", name, err)
		}
		shape = append(shape, d)
	}
	return seed, shape
}

func TestRandnReference(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("rng.safetensors"))
	names := f.Names()
	sort.Strings(names)
	checked := 0
	for _, name := range names {
		if !strings.HasPrefix(name, "randn.seed") {
			continue
		}
		seed, shape := parseName(t, name)
		ref := f.Must(t, name)
		got := New(seed).Randn(shape...)
		if len(got) != len(ref.Data) {
			t.Fatalf("%s: got %d values, reference has %d", name, len(got), len(ref.Data))
		}
		golden.Check(t, name, got, ref, 1e-6)
		checked++
	}
	if checked == 0 {
		t.Fatal("no randn.seed* tensors in rng.safetensors")
	}
}

func TestRandnTwoDrawsInARow(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("rng.safetensors"))
	first := f.Must(t, "randn.seq42.first_1x4x8x8")
	second := f.Must(t, "randn.seq42.second_1x4x8x8")
	g := New(42)
	golden.Check(t, "seq42.first", g.Randn(1, 4, 8, 8), first, 1e-6)
	golden.Check(t, "seq42.second", g.Randn(1, 4, 8, 8), second, 1e-6)
}

// TestSeedUsesLow32Bits checks the property the reference seeds 4294967303 (2^32+7) and
// 2^63-1 rely on: at::mt19937 keeps only the low 32 bits.
func TestSeedUsesLow32Bits(t *testing.T) {
	a := New(1<<32 + 7).Randn(20)
	b := New(7).Randn(20)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("value %d: seed 2^32+7 gave %v, seed 7 gave %v", i, a[i], b[i])
		}
	}
}

// TestMT19937 checks the engine against the C++ standard's required 10000th output of
// std::mt19937 with its default seed 5489.
func TestMT19937(t *testing.T) {
	g := New(5489)
	var v uint32
	for i := 0; i < 10000; i++ {
		v = g.Uint32()
	}
	if v != 4123659995 {
		t.Fatalf("10000th output = %d, want 4123659995", v)
	}
}

func TestScalarPathCachesSecondNormal(t *testing.T) {
	// Seven values use four Box–Muller pairs; the eighth stays cached for the next call.
	g := New(3)
	a := g.Randn(7)
	b := g.Randn(1)
	all := New(3).Randn(8)[:0]
	g2 := New(3)
	for i := 0; i < 8; i++ {
		all = append(all, float32(g2.NormFloat64()))
	}
	got := append(a, b...)
	for i := range got {
		if got[i] != all[i] {
			t.Fatalf("value %d: %v after split draws, %v in one stream", i, got[i], all[i])
		}
	}
}

func TestRandnEmpty(t *testing.T) {
	if got := New(1).Randn(0, 4); len(got) != 0 {
		t.Fatalf("Randn(0,4) gave %d values", len(got))
	}
	if got := New(1).Randn(); len(got) != 1 {
		t.Fatalf("Randn() gave %d values, want 1", len(got))
	}
}

func BenchmarkRandn1x4x64x64(b *testing.B) {
	g := New(0)
	dst := make([]float32, 4*64*64)
	for i := 0; i < b.N; i++ {
		g.FillNormal(dst)
	}
}

// TestPipelineInitialLatents checks the initial latents of the reference pipeline runs, which
// diffusers draws with torch.randn(shape, generator=manual_seed(seed)) (PNDM/DDIM: ×1).
func TestPipelineInitialLatents(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	for _, tc := range []struct {
		run  string
		seed uint64
	}{{"pndm", 42}, {"ddim", 0}, {"rect_nocfg", 123456789}} {
		ref := f.Must(t, "e2e."+tc.run+".latents_init")
		golden.Check(t, "e2e."+tc.run+".latents_init", New(tc.seed).Randn(ref.Shape...), ref, 1e-6)
	}
}

// A shape whose element count overflows int must panic with torchrand's message, before make
// sees a wrapped (possibly small, possibly negative) count.
func TestRandnOverflowPanics(t *testing.T) {
	for _, shape := range [][]int{{1 << 20, 1 << 20, 1 << 30}, {math.MaxInt, 2}, {math.MaxInt/2 + 1, 2, 1}} {
		func() {
			defer func() {
				r := recover()
				msg, _ := r.(string)
				if !strings.Contains(msg, "overflows") {
					t.Errorf("Randn(%v): recovered %v, want the overflow panic", shape, r)
				}
			}()
			New(1).Randn(shape...)
		}()
	}
	if got := New(1).Randn(0, math.MaxInt, 2); len(got) != 0 {
		t.Errorf("a zero dimension gives %d values, want 0", len(got))
	}
}
