package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
)

// TestAttentionBF16 runs AttentionBF16 on every path (AVX512-BF16 kernels, their plain-Go twin,
// and the float32 kernels where the CPU has no AVX512-BF16) on odd shapes, against the float64
// reference on the unrounded inputs, and the assembly against the twin.
func TestAttentionBF16(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	worst := map[string]float64{}
	for _, p := range attnShapes {
		p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
		w := p.Heads * p.HeadDim
		q := randSlice(r, p.Batch*p.Nq*w, 1.5)
		k := randSlice(r, p.Batch*p.Nk*w, 1.5)
		v := randSlice(r, p.Batch*p.Nk*w, 1)
		ref := attnRef(p, q, k, v)
		got := map[string][]float32{}
		for _, procs := range []int{1, 3} {
			old := runtime.GOMAXPROCS(procs)
			for _, path := range bf16Paths {
				out := make([]float32, len(ref))
				for i := range out {
					out[i] = float32(math.NaN())
				}
				inPlace := append([]float32(nil), q...)
				if !withBF16Path(path, func() {
					AttentionBF16(p, q, k, v, out)
					AttentionBF16(p, inPlace, k, v, inPlace) // out = q
				}) {
					continue
				}
				for i := range inPlace {
					if inPlace[i] != out[i] {
						t.Errorf("%+v %s: in place (out = q) differs at %d: %g vs %g", p, path, i, inPlace[i], out[i])
						break
					}
				}
				e, mag := maxErr(out, ref)
				e /= math.Max(1, mag)
				worst[path] = math.Max(worst[path], e)
				tol := 3e-2 // bf16 keeps 8 significant bits of q, k, v and p
				if path == "widen" {
					tol = 4e-6
				}
				if !(e <= tol) {
					t.Errorf("%+v %s procs=%d: error %.3g × max(1, max|ref|) exceeds %.3g", p, path, procs, e, tol)
				}
				got[path] = out
			}
			runtime.GOMAXPROCS(old)
		}
		if a, b := got["bf16-asm"], got["bf16-twin"]; a != nil {
			diff := attnDiff(a, b)
			worst["asm vs twin"] = math.Max(worst["asm vs twin"], diff)
			// The softmax differs in the last bits (assembly vs Go exp2, summation order), which
			// can move a probability across a bf16 rounding boundary: one bf16 step of one term.
			if !(diff <= 3e-4) {
				t.Errorf("%+v: assembly and twin differ by %.3g × max(1, max|out|)", p, diff)
			}
		}
	}
	if !cpuHasBF16 {
		t.Log("CPU lacks AVX512-BF16: the assembly path was skipped (twin and widening checked)")
	}
	t.Logf("largest error × max(1, max|ref|) vs float64: %v", worst)
}

// BenchmarkAttentionBF16 compares Attention and AttentionBF16 on the UNet's and the text
// encoder's shapes (GFLOP per CPU-second is what one busy core achieves whatever the load):
//
//	go test ./internal/kernels -run '^$' -bench AttentionBF16
//
// attnDiff is the largest |a−b| relative to max(1, max|b|).
func attnDiff(a, b []float32) float64 {
	var diff, mag float64
	for i := range a {
		diff = math.Max(diff, math.Abs(float64(a[i]-b[i])))
		mag = math.Max(mag, math.Abs(float64(b[i])))
	}
	return diff / math.Max(1, mag)
}

func BenchmarkAttentionBF16(b *testing.B) {
	for _, p := range []AttentionParams{
		{Batch: 2, Heads: 8, Nq: 4096, Nk: 4096, HeadDim: 40},
		{Batch: 2, Heads: 8, Nq: 4096, Nk: 77, HeadDim: 40},
		{Batch: 2, Heads: 8, Nq: 1024, Nk: 1024, HeadDim: 80},
		{Batch: 2, Heads: 8, Nq: 256, Nk: 256, HeadDim: 160},
		{Batch: 2, Heads: 12, Nq: 77, Nk: 77, HeadDim: 64, Causal: true},
	} {
		p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
		r := rand.New(rand.NewSource(3))
		w := p.Heads * p.HeadDim
		q := randSlice(r, p.Batch*p.Nq*w, 1)
		k := randSlice(r, p.Batch*p.Nk*w, 1)
		v := randSlice(r, p.Batch*p.Nk*w, 1)
		out := make([]float32, len(q))
		for _, f := range []struct {
			name string
			fn   func(AttentionParams, []float32, []float32, []float32, []float32)
		}{{"fp32", Attention}, {"bf16", AttentionBF16}} {
			b.Run(fmt.Sprintf("%dx%dx%dx%dx%d/%s", p.Batch, p.Heads, p.Nq, p.Nk, p.HeadDim, f.name), func(b *testing.B) {
				f.fn(p, q, k, v, out)
				b.ResetTimer()
				c0 := benchutil.CPUTime()
				for i := 0; i < b.N; i++ {
					f.fn(p, q, k, v, out)
				}
				reportRates(b, 4*float64(p.Batch*p.Heads*p.Nq*p.Nk*p.HeadDim)*float64(b.N), c0)
			})
		}
	}
}
