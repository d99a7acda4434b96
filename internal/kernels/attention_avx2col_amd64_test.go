package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/internal/golden"
)

// TestAttnColKernelsAVX2 compares the AVX2 column-layout kernels (every lane count) with their
// plain-Go twins on odd step, key and query counts: the products sum in the same order, so they agree to the last bits
// (the twins' fused multiply-adds round twice, rarely); the softmax's probabilities below 2^-126
// are 0 where the twin keeps subnormals, and a kernel for fewer lanes does not rescale its lanes'
// l and O^T by α = 2^0 (c0 = 1 − 2^-24) when only a lane past it moves its maximum, as the twin
// of all 48 lanes does (the output, O^T/l, is the same).
func TestAttnColKernelsAVX2(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2+FMA on this CPU: the AVX2 column kernels were not run")
	}
	r := rand.New(rand.NewSource(37))
	worst := map[string]float64{}
	note := func(name string, d, tol float64) {
		worst[name] = math.Max(worst[name], d)
		if !(d <= tol) {
			t.Errorf("%s: assembly vs twin %.3g exceeds %.3g", name, d, tol)
		}
	}
	for nv := 1; nv <= 6; nv++ {
		ak := attnAVX2Col[nv]
		// lanes keeps the first 8·nv lanes of each 48-lane row: the rest are not computed.
		lanes := func(x []float32) []float32 {
			var y []float32
			for i := 0; i < len(x); i += attnBQ {
				y = append(y, x[i:i+8*nv]...)
			}
			return y
		}
		diff := func(a, b []float32) float64 { return relDiff(lanes(a), lanes(b)) }
		for _, d := range []int{1, 3, 8, 20, 40, 64, 80, 160} {
			for _, np := range []int{1, 3, 16} {
				q, k := randSlice(r, d*attnBQ, 1), randSlice(r, np*attnKP*d, 1)
				s1, s2 := make([]float32, np*attnKP*attnBQ), make([]float32, np*attnKP*attnBQ)
				ak.qkt(np, d, &q[0], &k[0], &s1[0])
				attnQKTGo(np, d, q, k, s2)
				note("QKT", diff(s1, s2), 1e-6)
			}
		}
		for _, nc := range []int{1, 2, 5, 20} {
			for _, nk := range []int{1, 7, 64, 128} {
				ldv := attnKP*nc + 3
				p, v := randSlice(r, nk*attnBQ, 1), randSlice(r, nk*ldv, 1)
				o1 := randSlice(r, attnKP*nc*attnBQ, 1)
				o2 := append([]float32(nil), o1...)
				ak.pvt(nk, nc, ldv, &p[0], &v[0], &o1[0])
				attnPVTGo(nk, nc, ldv, p, v, o2)
				note("PVT", diff(o1, o2), 1e-6)
			}
		}
		// The softmax: a first tile (m at attnMasked), tiles whose maximum rises past the slack
		// or not, and masked scores.
		for _, n := range []int{8, 16, 64, 128} {
			const nc = 5
			m1, l1, o1 := attnSoftmaxStart(nc)
			m2, l2, o2 := attnSoftmaxStart(nc)
			for step, s := range attnSoftmaxScores(r, n) {
				s1, s2 := append([]float32(nil), s...), append([]float32(nil), s...)
				ak.softmax(&s1[0], n, &m1[0], &l1[0], &o1[0], nc)
				attnSoftmaxTGo(s2, n, m2, l2, o2, nc, nil)
				for i := 0; i < 8*nv; i++ {
					if m1[i] != m2[i] {
						t.Fatalf("softmax nv=%d n=%d step %d lane %d: max %g vs %g", nv, n, step, i, m1[i], m2[i])
					}
				}
				for i, x := range s {
					if x == attnMasked && i%attnBQ < 8*nv && s1[i] != 0 {
						t.Fatalf("softmax nv=%d n=%d step %d: masked score %d gives %g, not 0", nv, n, step, i, s1[i])
					}
				}
				note("softmax l", diff(l1, l2), 1e-6)
				note("softmax o", diff(o1, o2), 1e-6)
				note("softmax p", diff(s1, s2), 1e-6)
				for i := range o1 { // give the next step an accumulator to rescale
					o1[i], o2[i] = float32(i%7), float32(i%7)
				}
			}
		}
	}
	// Gathering Q̃^T and storing the output rows, on partial tiles and odd head dimensions.
	for _, d := range []int{1, 3, 8, 13, 40, 41} {
		for _, nq := range []int{1, 7, 17, 47, 48} {
			ld := d + 5
			q := randSlice(r, nq*ld, 1)
			q = q[:(nq-1)*ld+d] // the last row ends the slice: nothing past it is read
			qt1, qt2 := make([]float32, d*attnBQ), make([]float32, d*attnBQ)
			for i := range qt1 {
				qt1[i] = float32(i) // overwritten, padding lanes with 0
			}
			attnLoadQTAVX2(&q[0], ld, nq, d, 0.7, &qt1[0])
			attnLoadQTGo(q, ld, nq, d, 0.7, qt2)
			note("load Q^T", relDiff(qt1, qt2), 0)
			dp := (d + 7) &^ 7
			o, l := randSlice(r, dp*attnBQ, 1), randSlice(r, attnBQ, 1)
			out1 := randSlice(r, nq*ld, 1)
			out1 = out1[:(nq-1)*ld+d]               // as q: the last row ends the slice
			out2 := append([]float32(nil), out1...) // the gaps between rows stay as they are
			attnStoreOTAVX2(&o[0], &l[0], nq, d, &out1[0], ld)
			attnStoreOTGo(o, l, nq, d, out2, ld)
			note("store O", relDiff(out1, out2), 0)
		}
	}
	for name, w := range worst {
		golden.Within(t, "avx2 "+name, "max rel", w, 1e-6)
	}
}

// TestAttnExp2AVX2 runs the AVX2 softmax on one row of scores spanning the range it sees (a
// first tile, so m becomes the row's maximum, 0) and compares its probabilities with float64 2^x
// and with the twin.
func TestAttnExp2AVX2(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2+FMA on this CPU")
	}
	const n = 1024
	var worstRef, worstTwin float64
	for x0 := float32(-140); x0 < 0; x0 += n * attnBQ * 0.00731 / 4 {
		s := make([]float32, n*attnBQ)
		s[0] = 0 // the maximum: m = 0 and p = 2^s
		for i := 1; i < len(s); i++ {
			s[i] = min(0, x0+float32(i)*0.00731/4)
		}
		s[len(s)-1] = attnMasked
		s2 := append([]float32(nil), s...)
		m, l, o := make([]float32, attnBQ), make([]float32, attnBQ), make([]float32, attnKP*attnBQ)
		for i := range m {
			m[i] = attnMasked
		}
		m2, l2, o2 := append([]float32(nil), m...), append([]float32(nil), l...), append([]float32(nil), o...)
		x := append([]float32(nil), s...)
		attnSoftmaxTAVX2(&s[0], n, &m[0], &l[0], &o[0], 1)
		attnSoftmaxTGo(s2, n, m2, l2, o2, 1, nil)
		for i, p := range s {
			lane := i % attnBQ
			arg := float64(x[i]) - float64(m[lane])
			want := math.Exp2(arg)
			if want < 0x1p-126 {
				if p != 0 && math.Abs(float64(p)-want) > 0x1p-126 {
					t.Fatalf("2^%g = %g, want %g", arg, p, want)
				}
				continue
			}
			worstRef = math.Max(worstRef, math.Abs(float64(p)-want)/want)
			worstTwin = math.Max(worstTwin, math.Abs(float64(p-s2[i]))/want)
		}
		if s[len(s)-1] != 0 {
			t.Fatalf("2^(masked) = %g, want 0", s[len(s)-1])
		}
	}
	t.Logf("AVX2 2^x: max rel error %.3g vs float64, %.3g vs the twin attnExp2", worstRef, worstTwin)
	golden.Within(t, "avx2 exp2 vs float64", "max rel", worstRef, 3e-7)
	golden.Within(t, "avx2 exp2 vs twin", "max rel", worstTwin, 1.2e-7)
}

// BenchmarkAttnKernelsAVX2 runs the AVX2 column kernels on one key tile at head dim 40.
func BenchmarkAttnKernelsAVX2(b *testing.B) {
	if !useAVX2 {
		b.Skip("no AVX2")
	}
	const d = 40
	q := make([]float32, attnBQ*d)
	kp := make([]float32, d*attnKBC)
	s := make([]float32, attnBQ*attnKBC)
	v := make([]float32, attnKBC*d)
	o := make([]float32, attnBQ*d)
	m := make([]float32, attnBQ)
	l := make([]float32, attnBQ)
	for i := range m {
		m[i] = 100 // probabilities 2^(s − 100) stay finite when the softmax overwrites s
	}
	for _, k := range []struct {
		name string
		f    func()
		n    float64
	}{
		{"qk", func() { attnQKTAVX2(attnKBC/attnKP, d, &q[0], &kp[0], &s[0]) }, 2 * attnBQ * attnKBC * d},
		{"pv", func() { attnPVTAVX2(attnKBC, d/attnKP, d, &s[0], &v[0], &o[0]) }, 2 * attnBQ * attnKBC * d},
		{"softmax", func() { attnSoftmaxTAVX2(&s[0], attnKBC, &m[0], &l[0], &o[0], d/attnKP) }, attnBQ * attnKBC},
	} {
		b.Run(fmt.Sprint(k.name), func(b *testing.B) {
			c0 := benchutil.CPUTime()
			for i := 0; i < b.N; i++ {
				k.f()
			}
			reportRates(b, float64(b.N)*k.n, c0) // for softmax, 10⁹ exponentials
		})
	}
}
