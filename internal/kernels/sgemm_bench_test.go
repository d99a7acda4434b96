package kernels

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
)

// BenchmarkSGEMM runs C = A·B for the shapes named m×n×k (attention-like: 4096×40×4096 is
// softmax(QKᵀ)·V for one head of 64×64 latents).
func BenchmarkSGEMM(b *testing.B) {
	for _, s := range [][3]int{{4096, 320, 320}, {4096, 1280, 1280}, {4096, 40, 4096}, {4096, 4096, 40}} {
		m, n, k := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%dx%d", m, n, k), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			a, bb, c := sgemmRandSlice(r, m*k), sgemmRandSlice(r, k*n), make([]float32, m*n)
			Sgemm(false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				Sgemm(false, false, m, n, k, 1, a, k, bb, n, 0, c, n)
			}
			sgemmReport(b, 2*float64(m)*float64(n)*float64(k), cpu0)
		})
	}
}

// BenchmarkLinear is y = x·wᵀ + bias for the UNet's 4096-token projections (transposed B).
func BenchmarkLinear(b *testing.B) {
	for _, s := range [][3]int{{4096, 320, 320}, {4096, 320, 2560}, {154, 768, 768}, {154, 768, 3072}, {154, 3072, 768}} {
		rows, in, out := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%d→%d", rows, in, out), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			x, w, bias, y := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in), sgemmRandSlice(r, out), make([]float32, rows*out)
			Linear(x, rows, in, w, out, bias, y)
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				Linear(x, rows, in, w, out, bias, y)
			}
			sgemmReport(b, 2*float64(rows)*float64(in)*float64(out), cpu0)
		})
		b.Run(fmt.Sprintf("%dx%d→%d_f16", rows, in, out), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			x, bias, y := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out), make([]float32, rows*out)
			w, _ := sgemmRandHalf(r, out*in)
			LinearF16(x, rows, in, w, out, bias, y)
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				LinearF16(x, rows, in, w, out, bias, y)
			}
			sgemmReport(b, 2*float64(rows)*float64(in)*float64(out), cpu0)
		})
		for _, half := range []bool{false, true} {
			name := fmt.Sprintf("%dx%d→%d_packed", rows, in, out)
			if half {
				name += "_f16"
			}
			b.Run(name, func(b *testing.B) {
				r := rand.New(rand.NewSource(1))
				x, bias, y := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out), make([]float32, rows*out)
				wh, wf := sgemmRandHalf(r, out*in)
				pw := PackWeight(wf, out, in)
				if half {
					pw = PackWeightF16(wh, out, in)
				}
				LinearPacked(x, rows, pw, bias, y)
				b.ResetTimer()
				cpu0 := benchutil.CPUSeconds()
				for i := 0; i < b.N; i++ {
					LinearPacked(x, rows, pw, bias, y)
				}
				sgemmReport(b, 2*float64(rows)*float64(in)*float64(out), cpu0)
			})
		}
	}
}

// sgemmReport reports GFLOP/s (wall clock) and GFLOP per CPU-second for b.N runs of flops each.
func sgemmReport(b *testing.B, flops float64, cpu0 float64) {
	total := flops * float64(b.N)
	b.ReportMetric(total/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu := benchutil.CPUSeconds() - cpu0; cpu > 0 && cpu0 > 0 {
		b.ReportMetric(total/cpu/1e9, "GFLOP/cpu-s")
	}
}

// BenchmarkLinearCold is LinearPacked on the text encoder's shapes cycling through enough
// distinct weights (about 340 MB, a CLIP ViT-L/14's) that each one comes from memory rather than
// the last-level cache, as in a model forward.
func BenchmarkLinearCold(b *testing.B) {
	for _, s := range [][3]int{{154, 768, 3072}, {154, 3072, 768}, {154, 768, 2304}} {
		rows, in, out := s[0], s[1], s[2]
		b.Run(fmt.Sprintf("%dx%d→%d", rows, in, out), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			x, bias, y := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out), make([]float32, rows*out)
			wf := sgemmRandSlice(r, out*in)
			ws := make([]*PackedWeight, (340<<20)/(4*in*out))
			for i := range ws {
				ws[i] = PackWeight(wf, out, in)
			}
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				LinearPacked(x, rows, ws[i%len(ws)], bias, y)
			}
			sgemmReport(b, 2*float64(rows)*float64(in)*float64(out), cpu0)
		})
	}
}
