package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/internal/golden"
)

// relDiff is max|a−b| / max(1, max|b|).
func relDiff(a, b []float32) float64 {
	var d, m float64
	for i := range b {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	return d / math.Max(1, m)
}

// randPairs returns n bf16 pairs of normal values times scale.
func randPairs(r *rand.Rand, n int, scale float32) []uint32 {
	x := make([]uint32, n)
	for i := range x {
		lo, hi := bf16FromF32(float32(r.NormFloat64())*scale), bf16FromF32(float32(r.NormFloat64())*scale)
		x[i] = uint32(lo) | uint32(hi)<<16
	}
	return x
}

// TestAttnColKernels compares the AVX-512 column-layout kernels (float32 and bf16) with their
// plain-Go twins on odd step counts and key counts: the products sum in the same order, so they
// agree to the last bits (the twins' fused multiply-adds round twice, rarely).
func TestAttnColKernels(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512 on this CPU: the column kernels' assembly was not run")
	}
	r := rand.New(rand.NewSource(31))
	worst := map[string]float64{}
	note := func(name string, d, tol float64) {
		worst[name] = math.Max(worst[name], d)
		if !(d <= tol) {
			t.Errorf("%s: assembly vs twin %.3g exceeds %.3g", name, d, tol)
		}
	}
	for _, d := range []int{1, 3, 8, 20, 40, 64, 80, 160} {
		for _, np := range []int{1, 3, 16} {
			q, k := randSlice(r, d*attnBQ, 1), randSlice(r, np*attnKP*d, 1)
			s1, s2 := make([]float32, np*attnKP*attnBQ), make([]float32, np*attnKP*attnBQ)
			attnQKT512(np, d, &q[0], &k[0], &s1[0])
			attnQKTGo(np, d, q, k, s2)
			note("QKT fp32", relDiff(s1, s2), 1e-6)
			if cpuHasBF16 {
				qb, kb := randPairs(r, d*attnBQ, 1), randPairs(r, np*attnKP*d, 1)
				attnQKT512BF16(np, d, &qb[0], &kb[0], &s1[0])
				attnQKTBF16Go(np, d, qb, kb, s2)
				note("QKT bf16", relDiff(s1, s2), 1e-6)
			}
		}
	}
	for _, nc := range []int{1, 2, 5, 20} {
		for _, nk := range []int{1, 7, 64, 128} {
			ldv := attnKP*nc + 3
			p, v := randSlice(r, nk*attnBQ, 1), randSlice(r, nk*ldv, 1)
			o1 := randSlice(r, attnKP*nc*attnBQ, 1)
			o2 := append([]float32(nil), o1...)
			attnPVT512(nk, nc, ldv, &p[0], &v[0], &o1[0])
			attnPVTGo(nk, nc, ldv, p, v, o2)
			note("PVT fp32", relDiff(o1, o2), 1e-6)
			if cpuHasBF16 {
				pb, vb := randPairs(r, nk*attnBQ, 1), randPairs(r, nk*ldv, 1)
				attnPVT512BF16(nk, nc, ldv, &pb[0], &vb[0], &o1[0])
				attnPVTBF16Go(nk, nc, ldv, pb, vb, o2)
				note("PVT bf16", relDiff(o1, o2), 1e-6)
			}
		}
	}
	// The softmax: a first tile (m at attnMasked), tiles whose maximum rises past the slack or
	// not, and masked scores.
	for _, n := range []int{8, 16, 64, 128} {
		for _, bf := range []bool{false, true} {
			if bf && !cpuHasBF16 {
				continue
			}
			const nc = 5
			m1, l1, o1 := attnSoftmaxStart(nc)
			m2, l2, o2 := attnSoftmaxStart(nc)
			for step, s := range attnSoftmaxScores(r, n) {
				s1, s2 := append([]float32(nil), s...), append([]float32(nil), s...)
				var p1, p2 []uint32
				if bf {
					p1, p2 = make([]uint32, n/2*attnBQ), make([]uint32, n/2*attnBQ)
					attnSoftmaxT512BF16(&s1[0], n, &m1[0], &l1[0], &o1[0], nc, &p1[0])
					attnSoftmaxTGo(s2, n, m2, l2, o2, nc, p2)
				} else {
					attnSoftmaxT512(&s1[0], n, &m1[0], &l1[0], &o1[0], nc)
					attnSoftmaxTGo(s2, n, m2, l2, o2, nc, nil)
				}
				name := fmt.Sprintf("softmax bf16=%v", bf)
				for i := range m1 {
					if m1[i] != m2[i] {
						t.Fatalf("%s n=%d step %d lane %d: max %g vs %g", name, n, step, i, m1[i], m2[i])
					}
				}
				note(name+" l", relDiff(l1, l2), 1e-6)
				note(name+" o", relDiff(o1, o2), 1e-6)
				if bf {
					// A last-bit difference in p can round to the neighbouring bf16 value.
					var d float64
					for i := range p1 {
						for _, sh := range []uint{0, 16} {
							a, b := bf16Float(p1[i]>>sh&0xffff), bf16Float(p2[i]>>sh&0xffff)
							d = math.Max(d, math.Abs(float64(a-b))/math.Max(1e-30, math.Abs(float64(b))))
						}
					}
					note(name+" p (relative)", d, 1/128.)
				} else {
					note(name+" p", relDiff(s1, s2), 1e-6)
				}
				for i := range o1 { // give the next step an accumulator to rescale
					o1[i], o2[i] = float32(i%7), float32(i%7)
				}
			}
		}
	}
	// Gathering Q̃^T and scattering the output rows, on partial tiles and odd head dimensions.
	for _, d := range []int{1, 3, 8, 40, 41} {
		for _, nq := range []int{1, 17, 47, 48} {
			ld := d + 5
			q := randSlice(r, nq*ld, 1)
			q = q[:(nq-1)*ld+d] // the last row ends the slice: nothing past it is read
			qt1, qt2 := make([]float32, d*attnBQ), make([]float32, d*attnBQ)
			for i := range qt1 {
				qt1[i] = float32(i) // overwritten, padding lanes with 0
			}
			attnLoadQT512(&q[0], ld, nq, d, 0.7, &qt1[0])
			attnLoadQTGo(q, ld, nq, d, 0.7, qt2)
			note("load Q^T fp32", relDiff(qt1, qt2), 0)
			if cpuHasBF16 {
				b1, b2 := make([]uint32, attnPairs(d)*attnBQ), make([]uint32, attnPairs(d)*attnBQ)
				for i := range b1 {
					b1[i] = uint32(i)
				}
				attnLoadQT512BF16(&q[0], ld, nq, d, 0.7, &b1[0])
				attnLoadQTBF16Go(q, ld, nq, d, 0.7, b2)
				for i := range b1 {
					if b1[i] != b2[i] {
						t.Fatalf("load Q^T bf16 d=%d nq=%d: slot %d is %#x, twin %#x", d, nq, i, b1[i], b2[i])
					}
				}
			}
			o, l := randSlice(r, d*attnBQ, 1), randSlice(r, attnBQ, 1)
			out1, out2 := randSlice(r, nq*ld, 1), make([]float32, nq*ld)
			copy(out2, out1) // the gaps between rows stay as they are
			attnStoreOT512(&o[0], &l[0], nq, d, &out1[0], ld)
			attnStoreOTGo(o, l, nq, d, out2, ld)
			note("store O fp32", relDiff(out1, out2), 0)
		}
	}
	for name, w := range worst {
		golden.Within(t, name, "max rel", w, 1e-6)
	}
}

// TestAttnExp2 checks the column layout's 2^x (the plain-Go twin; the assembly is compared with
// it above) against float64 over the range the softmax uses, masked scores and the flush of
// x < −126 to 0 included.
func TestAttnExp2(t *testing.T) {
	var worst float64
	for x := float32(-140); x <= attnMaxSlack+1; x += 0.00731 {
		got, want := float64(attnExp2(x)), math.Exp2(float64(x))
		if x < -126 { // flushed: no probability is subnormal
			if got != 0 {
				t.Fatalf("2^%g = %g, want 0 (flushed)", x, got)
			}
			continue
		}
		worst = math.Max(worst, math.Abs(got-want)/want)
	}
	for _, x := range []float32{attnMasked, attnMasked - 5, -1e20, -1000} {
		if attnExp2(x) != 0 {
			t.Errorf("2^%g = %g, want 0", x, attnExp2(x))
		}
	}
	golden.Within(t, "attnExp2", "max rel", worst, 3e-7)
}

// BenchmarkAttnKernels512 runs the column kernels on one key tile at head dim 40.
func BenchmarkAttnKernels512(b *testing.B) {
	if !useAVX512 {
		b.Skip("no AVX-512")
	}
	const d = 40
	q := make([]float32, attnBQ*d)
	kp := make([]float32, d*attnKBC)
	s := make([]float32, attnBQ*attnKBC)
	v := make([]float32, attnKBC*d)
	o := make([]float32, attnBQ*d)
	m := make([]float32, attnBQ)
	l := make([]float32, attnBQ)
	pt := make([]uint32, attnBQ*attnKBC/2)
	for i := range m {
		m[i] = 100 // probabilities 2^(s − 100) stay finite when the fp32 softmax overwrites s
	}
	b.Run("qk", func(b *testing.B) {
		c0 := benchutil.CPUTime()
		for i := 0; i < b.N; i++ {
			attnQKT512(attnKBC/attnKP, d, &q[0], &kp[0], &s[0])
		}
		reportRates(b, float64(b.N)*2*attnBQ*attnKBC*d, c0)
	})
	b.Run("pv", func(b *testing.B) {
		c0 := benchutil.CPUTime()
		for i := 0; i < b.N; i++ {
			attnPVT512(attnKBC, d/attnKP, d, &s[0], &v[0], &o[0])
		}
		reportRates(b, float64(b.N)*2*attnBQ*attnKBC*d, c0)
	})
	b.Run("softmax", func(b *testing.B) {
		c0 := benchutil.CPUTime()
		for i := 0; i < b.N; i++ {
			attnSoftmaxT512(&s[0], attnKBC, &m[0], &l[0], &o[0], d/attnKP)
		}
		reportRates(b, float64(b.N)*attnBQ*attnKBC, c0)
	})
	if !cpuHasBF16 {
		return
	}
	b.Run("qk-bf16", func(b *testing.B) {
		c0 := benchutil.CPUTime()
		for i := 0; i < b.N; i++ {
			attnQKT512BF16(attnKBC/attnKP, d/2, &u32s(q)[0], &u32s(kp)[0], &s[0])
		}
		reportRates(b, float64(b.N)*2*attnBQ*attnKBC*d, c0)
	})
	b.Run("pv-bf16", func(b *testing.B) {
		c0 := benchutil.CPUTime()
		for i := 0; i < b.N; i++ {
			attnPVT512BF16(attnKBC/2, d/attnKP, d, &pt[0], &u32s(v)[0], &o[0])
		}
		reportRates(b, float64(b.N)*2*attnBQ*attnKBC*d, c0)
	})
	b.Run("softmax-bf16", func(b *testing.B) {
		c0 := benchutil.CPUTime()
		for i := 0; i < b.N; i++ {
			attnSoftmaxT512BF16(&s[0], attnKBC, &m[0], &l[0], &o[0], d/attnKP, &pt[0])
		}
		reportRates(b, float64(b.N)*attnBQ*attnKBC, c0)
	})
}

// attnSoftmaxStart is an online softmax's state before its first key tile, for the softmax
// kernel tests: the running maxima at attnMasked, the sums and O^T (nc passes of attnKP rows) 0.
func attnSoftmaxStart(nc int) (m, l, o []float32) {
	m, l, o = make([]float32, attnBQ), make([]float32, attnBQ), make([]float32, attnKP*nc*attnBQ)
	for i := range m {
		m[i] = attnMasked
	}
	return m, l, o
}

// attnSoftmaxScores is the softmax kernel tests' sequence of score tiles (n keys by attnBQ
// queries): a first tile, then tiles whose maximum rises past the slack or not, with masked scores
// after the first key row.
func attnSoftmaxScores(r *rand.Rand, n int) [][]float32 {
	var tiles [][]float32
	for step, spread := range []float64{3, 3, 30, 1, 300} {
		s := make([]float32, n*attnBQ)
		for i := range s {
			s[i] = float32(r.NormFloat64()*spread) + float32(step)*5
			if i >= attnBQ && r.Intn(9) == 0 {
				s[i] = attnMasked
			}
		}
		tiles = append(tiles, s)
	}
	return tiles
}
