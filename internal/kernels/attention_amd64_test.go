package kernels

import (
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
)

// BenchmarkAttnKernels measures the three inner kernels of Attention on one L1-resident tile
// (HeadDim 40): the GFLOP/cpu-s of dot and accum say how close they come to the FMA peak; for
// softmax the unit is 10⁹ exponentials.
func BenchmarkAttnKernels(b *testing.B) {
	if !useAVX2 {
		b.Skip("no AVX2")
	}
	q := make([]float32, attnBQ*40)
	kp := make([]float32, 40*attnBK)
	s := make([]float32, attnBQ*attnBK)
	v := make([]float32, attnBK*40)
	o := make([]float32, attnBQ*40)
	m := make([]float32, attnBQ)
	l := make([]float32, attnBQ)
	b.Run("dot", func(b *testing.B) {
		c0 := benchutil.CPUTime()
		for i := 0; i < b.N; i++ {
			for c := 0; c < attnBK; c += 16 {
				attnDotAVX2(attnBQ, 40, &q[0], &kp[c*40], &s[c], attnBK)
			}
		}
		reportRates(b, float64(b.N)*2*attnBQ*attnBK*40, c0)
	})
	b.Run("accum", func(b *testing.B) {
		c0 := benchutil.CPUTime()
		for i := 0; i < b.N; i++ {
			attnAccumAVX2(attnBQ, attnBK, 40, &s[0], &v[0], &o[0])
		}
		reportRates(b, float64(b.N)*2*attnBQ*attnBK*40, c0)
	})
	b.Run("softmax", func(b *testing.B) {
		c0 := benchutil.CPUTime()
		for i := 0; i < b.N; i++ {
			attnSoftmaxAVX2(&s[0], attnBQ, attnBK, &m[0], &l[0], &o[0], 40)
		}
		reportRates(b, float64(b.N)*attnBQ*attnBK, c0) // "GFLOP" = G exps here
	})
}
