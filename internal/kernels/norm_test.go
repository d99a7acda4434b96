package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/internal/golden"
)

func normRef(x []float32, n, c, hw, groups int, eps float32, gamma, beta []float32, silu bool) []float64 {
	y := make([]float64, len(x))
	cg := c / groups
	size := cg * hw
	for t := 0; t < n*groups; t++ {
		xs := x[t*size : (t+1)*size]
		var sum float64
		for _, v := range xs {
			sum += float64(v)
		}
		mean := sum / float64(size)
		var ss float64
		for _, v := range xs {
			ss += (float64(v) - mean) * (float64(v) - mean)
		}
		rstd := 1 / math.Sqrt(ss/float64(size)+float64(eps))
		for i, v := range xs {
			ch := (t%groups)*cg + i/hw
			o := (float64(v) - mean) * rstd
			if gamma != nil {
				o *= float64(gamma[ch])
			}
			if beta != nil {
				o += float64(beta[ch])
			}
			if silu {
				o = o / (1 + math.Exp(-o))
			}
			y[t*size+i] = o
		}
	}
	return y
}

func TestGroupNorm(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	for _, s := range []struct{ n, c, hw, groups int }{
		{1, 1, 1, 1}, {1, 2, 1, 1}, {1, 4, 3, 2}, {2, 6, 7, 3}, {1, 32, 13, 32}, {2, 64, 17, 32},
		{1, 320, 64, 32}, {2, 96, 97, 32}, {1, 3, 1000, 1},
	} {
		for _, silu := range []bool{false, true} {
			x := randSlice(r, s.n*s.c*s.hw, 2)
			for i := range x {
				x[i] += 3 // an offset, so a one-pass variance would lose digits
			}
			gamma, beta := randSlice(r, s.c, 1), randSlice(r, s.c, 1)
			if s.c == 4 {
				gamma, beta = nil, nil
			}
			ref := normRef(x, s.n, s.c, s.hw, s.groups, 1e-5, gamma, beta, silu)
			fast, plain := make([]float32, len(x)), make([]float32, len(x))
			GroupNorm(x, fast, s.n, s.c, s.hw, s.groups, 1e-5, gamma, beta, silu)
			withAVX2(false, func() { GroupNorm(x, plain, s.n, s.c, s.hw, s.groups, 1e-5, gamma, beta, silu) })
			ef, mag := maxErr(fast, ref)
			ep, _ := maxErr(plain, ref)
			// 3e-6 × max(1, max|ref|): about 10× the largest measured, 2.4e-7 ({1 2 1 1} with SiLU).
			lim := 3e-6 * math.Max(1, mag)
			golden.Within(t, fmt.Sprintf("%v silu=%v fast", s, silu), "max abs", ef, lim)
			golden.Within(t, fmt.Sprintf("%v silu=%v plain", s, silu), "max abs", ep, lim)
			// In place.
			GroupNorm(x, x, s.n, s.c, s.hw, s.groups, 1e-5, gamma, beta, silu)
			for i := range x {
				if x[i] != fast[i] {
					t.Fatalf("%v: in-place result differs at %d", s, i)
				}
			}
		}
	}
}

func TestLayerNorm(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, s := range []struct{ rows, cols int }{{1, 1}, {1, 2}, {3, 7}, {77, 768}, {5, 13}, {2, 1000}} {
		x := randSlice(r, s.rows*s.cols, 3)
		gamma, beta := randSlice(r, s.cols, 1), randSlice(r, s.cols, 1)
		if s.cols == 13 {
			gamma, beta = nil, nil
		}
		// LayerNorm of rows×cols is GroupNorm with n = rows, one group, one channel... except that
		// gamma is per column, so build the reference directly.
		ref := make([]float64, len(x))
		for i := 0; i < s.rows; i++ {
			row := normRef(x[i*s.cols:(i+1)*s.cols], 1, 1, s.cols, 1, 1e-5, nil, nil, false)
			for j, v := range row {
				if gamma != nil {
					v = v*float64(gamma[j]) + float64(beta[j])
				}
				ref[i*s.cols+j] = v
			}
		}
		fast, plain := make([]float32, len(x)), make([]float32, len(x))
		LayerNorm(x, fast, s.rows, s.cols, 1e-5, gamma, beta)
		withAVX2(false, func() { LayerNorm(x, plain, s.rows, s.cols, 1e-5, gamma, beta) })
		ef, mag := maxErr(fast, ref)
		ep, _ := maxErr(plain, ref)
		// 9e-7 × max(1, max|ref|): about 10× the largest measured, 8.5e-8 ({77 768}).
		lim := 9e-7 * math.Max(1, mag)
		golden.Within(t, fmt.Sprintf("%v fast", s), "max abs", ef, lim)
		golden.Within(t, fmt.Sprintf("%v plain", s), "max abs", ep, lim)
	}
}

func TestGroupNormAllocs(t *testing.T) {
	if raceBuild {
		t.Skip("sync.Pool drops items at random under -race")
	}
	r := rand.New(rand.NewSource(6))
	x := randSlice(r, 2*64*256, 1)
	g, b := randSlice(r, 64, 1), randSlice(r, 64, 1)
	y := make([]float32, len(x))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	GroupNorm(x, y, 2, 64, 256, 32, 1e-5, g, b, true)
	a := testing.AllocsPerRun(20, func() { GroupNorm(x, y, 2, 64, 256, 32, 1e-5, g, b, true) })
	t.Logf("allocations per GroupNorm call with GOMAXPROCS=1: %v", a)
	if a != 0 {
		t.Errorf("GroupNorm allocates %v times per call", a)
	}
}

func BenchmarkGroupNormSiLU(b *testing.B) {
	for _, s := range []struct{ n, c, h, w int }{{2, 320, 64, 64}, {1, 512, 128, 128}} {
		b.Run(fmt.Sprintf("%dx%dx%dx%d", s.n, s.c, s.h, s.w), func(b *testing.B) {
			r := rand.New(rand.NewSource(7))
			size := s.n * s.c * s.h * s.w
			x := randSlice(r, size, 1)
			g, be := randSlice(r, s.c, 1), randSlice(r, s.c, 1)
			y := make([]float32, size)
			b.SetBytes(int64(8 * size)) // one read, one write of each value
			c0 := benchutil.CPUTime()
			for i := 0; i < b.N; i++ {
				GroupNorm(x, y, s.n, s.c, s.h*s.w, 32, 1e-5, g, be, true)
			}
			// FLOPs: mean, variance (3), affine (2) and SiLU (about 20 for exp and the division).
			reportRates(b, 25*float64(size)*float64(b.N), c0)
			b.ReportMetric(8*float64(size)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
		})
	}
}

// TestNormMomentsOffset checks the one-pass shifted statistics where a one-pass float32 sum of
// squares would fail: a mean of 10⁴ with a spread of 0.1, and a first value (the shift) far out.
func TestNormMomentsOffset(t *testing.T) {
	r := rand.New(rand.NewSource(22))
	x := make([]float32, 100003)
	for i := range x {
		x[i] = float32(1e4 + 0.1*r.NormFloat64())
	}
	x[0] = 1e4 + 50
	var sum float64
	for _, v := range x {
		sum += float64(v)
	}
	mean := sum / float64(len(x))
	var ss float64
	for _, v := range x {
		ss += (float64(v) - mean) * (float64(v) - mean)
	}
	wantRstd := 1 / math.Sqrt(ss/float64(len(x))+1e-5)
	for _, avx := range []bool{true, false} {
		var m, rstd float64
		withAVX2(avx, func() { m, rstd = normMoments(x, 1e-5) })
		em, er := math.Abs(m-mean), math.Abs(rstd-wantRstd)/wantRstd
		// float64 sums: the mean exact here, rstd 6.9e-13 relative.
		golden.Within(t, fmt.Sprintf("avx=%v: mean", avx), "max abs", em, 1e-11)
		golden.Within(t, fmt.Sprintf("avx=%v: rstd", avx), "relative", er, 1e-11)
	}
}

// TestGroupNormCoef checks that GroupNormCoef + NormAffine on rows of a plane give GroupNorm's
// values bit for bit (rows a multiple of 8 wide).
func TestGroupNormCoef(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	const n, c, hw, w, groups = 2, 64, 48 * 32, 32, 16
	xs := randSlice(r, n*c*hw, 3)
	gamma, beta := randSlice(r, c, 1), randSlice(r, c, 1)
	want := make([]float32, len(xs))
	GroupNorm(xs, want, n, c, hw, groups, 1e-6, gamma, beta, true)
	m, s, b := make([]float32, n*c), make([]float32, n*c), make([]float32, n*c)
	GroupNormCoef(xs, n, c, hw, groups, 1e-6, gamma, beta, m, s, b)
	got := make([]float32, len(xs))
	for i := 0; i < n*c; i++ {
		for o := i * hw; o < (i+1)*hw; o += w {
			NormAffine(xs[o:o+w], got[o:o+w], m[i], s[i], b[i], true)
		}
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("GroupNormCoef + NormAffine by rows: value %d is %v, GroupNorm gives %v", i, got[i], want[i])
		}
	}
}
