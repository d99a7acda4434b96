package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// TestAttnSoftmax512Kernel compares the AVX-512 online-softmax step with the AVX2 one on a tile with
// masked (−Inf) scores: probabilities, maxima and rescaled accumulators must agree bit for bit
// (same operations per lane), the running sums within rounding (other summation order).
func TestAttnSoftmax512Kernel(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512 on this CPU: nothing to compare")
	}
	r := rand.New(rand.NewSource(17))
	for _, n := range []int{16, 48, 64} {
		const nq, dp = 13, 40
		s := make([]float32, attnBQ*attnBK)
		for i := range s {
			s[i] = float32(r.NormFloat64() * 30)
			if r.Intn(7) == 0 {
				s[i] = float32(math.Inf(-1))
			}
		}
		for i := 0; i < nq; i++ {
			s[i*attnBK] = float32(r.NormFloat64())
		}
		m, l := make([]float32, nq), make([]float32, nq)
		o := randSlice(r, nq*dp, 1)
		for i := range m {
			m[i] = float32(r.NormFloat64() * 30)
			l[i] = float32(r.Float64() * 10)
		}
		s2, m2, l2, o2 := append([]float32(nil), s...), append([]float32(nil), m...), append([]float32(nil), l...), append([]float32(nil), o...)
		attnSoftmax512(&s[0], nq, n, &m[0], &l[0], &o[0], dp)
		attnSoftmaxAVX2(&s2[0], nq, n, &m2[0], &l2[0], &o2[0], dp)
		var worstL float64
		for i := 0; i < nq; i++ {
			for c := 0; c < n; c++ {
				if a, b := s[i*attnBK+c], s2[i*attnBK+c]; a != b {
					t.Fatalf("n=%d row %d col %d: P %g vs %g", n, i, c, a, b)
				}
			}
			if m[i] != m2[i] {
				t.Errorf("n=%d row %d: max %g vs %g", n, i, m[i], m2[i])
			}
			e := math.Abs(float64(l[i]-l2[i])) / float64(l2[i])
			worstL = math.Max(worstL, e)
			if e > 1e-6 {
				t.Errorf("n=%d row %d: sum %g vs %g", n, i, l[i], l2[i])
			}
		}
		for i := range o {
			if o[i] != o2[i] {
				t.Fatalf("n=%d accumulator %d: %g vs %g", n, i, o[i], o2[i])
			}
		}
		t.Logf("n=%d: P, m, o identical; max relative sum difference %.3g", n, worstL)
	}
}

// BenchmarkAttnKernels512 is BenchmarkAttnKernels for the AVX-512 kernels.
func BenchmarkAttnKernels512(b *testing.B) {
	if !useAVX512 {
		b.Skip("no AVX-512")
	}
	q := make([]float32, attnBQ*40)
	kp := make([]float32, 40*attnBK)
	s := make([]float32, attnBQ*attnBK)
	v := make([]float32, attnBK*40)
	o := make([]float32, attnBQ*40)
	m := make([]float32, attnBQ)
	l := make([]float32, attnBQ)
	b.Run("dot", func(b *testing.B) {
		c0 := cpuTime()
		for i := 0; i < b.N; i++ {
			for c := 0; c < attnBK; c += 16 {
				attnDot512(attnBQ, 40, &q[0], &kp[c*40], &s[c])
			}
		}
		reportRates(b, float64(b.N)*2*attnBQ*attnBK*40, c0)
	})
	b.Run("accum", func(b *testing.B) {
		c0 := cpuTime()
		for i := 0; i < b.N; i++ {
			attnAccum512(attnBQ, attnBK, 40, &s[0], &v[0], &o[0])
		}
		reportRates(b, float64(b.N)*2*attnBQ*attnBK*40, c0)
	})
	b.Run("softmax", func(b *testing.B) {
		c0 := cpuTime()
		for i := 0; i < b.N; i++ {
			attnSoftmax512(&s[0], attnBQ, attnBK, &m[0], &l[0], &o[0], 40)
		}
		reportRates(b, float64(b.N)*attnBQ*attnBK, c0)
	})
}
