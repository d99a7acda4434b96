package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// sgemmRef is the float64 reference: C = alpha·op(A)·op(B) + beta·C.
func sgemmRef(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) []float64 {
	out := make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				var av, bv float32
				if transA {
					av = a[p*lda+i]
				} else {
					av = a[i*lda+p]
				}
				if transB {
					bv = b[j*ldb+p]
				} else {
					bv = b[p*ldb+j]
				}
				s += float64(av) * float64(bv)
			}
			s *= float64(alpha)
			if beta != 0 {
				s += float64(beta) * float64(c[i*ldc+j])
			}
			out[i*n+j] = s
		}
	}
	return out
}

func sgemmRandSlice(r *rand.Rand, n int) []float32 {
	s := make([]float32, n)
	for i := range s {
		s[i] = float32(r.NormFloat64())
	}
	return s
}

// sgemmRelErr returns max|got−ref| / max(1, max|ref|) over an m×n window of got with stride ldc.
func sgemmRelErr(got []float32, ldc int, ref []float64, m, n int) float64 {
	var maxErr, maxRef float64
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			r := ref[i*n+j]
			maxErr = math.Max(maxErr, math.Abs(float64(got[i*ldc+j])-r))
			maxRef = math.Max(maxRef, math.Abs(r))
		}
	}
	return maxErr / math.Max(1, maxRef)
}

type sgemmCase struct {
	transA, transB bool
	m, n, k        int
	pad            int // extra leading-dimension slack
	alpha, beta    float32
}

func (tc sgemmCase) String() string {
	return fmt.Sprintf("tA=%v,tB=%v,%dx%dx%d,pad=%d,alpha=%g,beta=%g", tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.pad, tc.alpha, tc.beta)
}

func sgemmCases(short bool) []sgemmCase {
	shapes := [][3]int{{1, 1, 1}, {1, 17, 5}, {7, 1, 3}, {6, 16, 1}, {5, 13, 7}, {13, 31, 37}, {6, 16, 256}, {7, 17, 257},
		{61, 67, 71}, {97, 33, 300}, {150, 40, 129}, {12, 200, 513}, {145, 129, 260}, {7, 60, 1000}}
	if !short {
		shapes = append(shapes, [3]int{301, 97, 600}, [3]int{64, 530, 80})
	}
	var cases []sgemmCase
	i := 0
	for _, s := range shapes {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				ab := [][2]float32{{1, 0}, {1, 1}, {-0.5, 0.25}, {2, 1}}[i%4]
				cases = append(cases, sgemmCase{tA, tB, s[0], s[1], s[2], (i % 3) * 3, ab[0], ab[1]})
				i++
			}
		}
	}
	return cases
}

// runSgemmCase runs fn on a fresh random problem and returns the relative error against float64.
// C starts as NaN when beta == 0 to check that old contents are ignored.
func runSgemmCase(t *testing.T, tc sgemmCase, fn func(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)) (float64, []float32) {
	r := rand.New(rand.NewSource(int64(tc.m*1000003 + tc.n*1009 + tc.k)))
	ar, ac := tc.m, tc.k
	if tc.transA {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.transB {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := ac+tc.pad, bc+tc.pad, tc.n+tc.pad
	a := sgemmRandSlice(r, ar*lda)
	b := sgemmRandSlice(r, br*ldb)
	c := sgemmRandSlice(r, tc.m*ldc)
	if tc.beta == 0 {
		for i := range c {
			c[i] = float32(math.NaN())
		}
	}
	ref := sgemmRef(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	padVal := float32(12345)
	for i := 0; i < tc.m; i++ { // slack columns must stay untouched
		for j := tc.n; j < ldc; j++ {
			c[i*ldc+j] = padVal
		}
	}
	fn(tc.transA, tc.transB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, c, ldc)
	for i := 0; i < tc.m; i++ {
		for j := tc.n; j < ldc; j++ {
			if c[i*ldc+j] != padVal {
				t.Fatalf("%v: wrote outside the matrix at (%d,%d)", tc, i, j)
			}
		}
	}
	return sgemmRelErr(c, ldc, ref, tc.m, tc.n), c
}

func TestSgemmGenericVsFloat64(t *testing.T) {
	var worst float64
	for _, tc := range sgemmCases(testing.Short()) {
		e, _ := runSgemmCase(t, tc, sgemmGeneric)
		worst = math.Max(worst, e)
		if !(e <= 1e-5) {
			t.Errorf("%v: relative error %.3g", tc, e)
		}
	}
	golden.Within(t, "sgemmGeneric vs float64", "largest relative", worst, 1e-5)
}

// TestSgemmVsFloat64 checks Sgemm on both paths (assembly when available, then plain Go) against
// float64 and against sgemmGeneric.
func TestSgemmVsFloat64(t *testing.T) {
	saved := useAVX2
	defer func() { useAVX2 = saved }()
	for _, asm := range []bool{true, false} {
		if asm && !saved {
			t.Log("no AVX2+FMA: assembly path not tested")
			continue
		}
		useAVX2 = asm
		var worst, worstTwin float64
		// One worker (static path) and three (shared-operand path with dynamic chunks).
		for _, procs := range []int{1, 3} {
			old := runtime.GOMAXPROCS(procs)
			for _, tc := range sgemmCases(testing.Short()) {
				e, got := runSgemmCase(t, tc, Sgemm)
				_, twin := runSgemmCase(t, tc, sgemmGeneric)
				var d, mx float64
				for i := range got {
					d = math.Max(d, math.Abs(float64(got[i]-twin[i])))
					mx = math.Max(mx, math.Abs(float64(twin[i])))
				}
				d /= math.Max(1, mx)
				worst, worstTwin = math.Max(worst, e), math.Max(worstTwin, d)
				if !(e <= 1e-5) || !(d <= 1e-5) {
					t.Errorf("asm=%v procs=%d %v: relative error %.3g vs float64, %.3g vs sgemmGeneric", asm, procs, tc, e, d)
				}
			}
			runtime.GOMAXPROCS(old)
		}
		golden.Within(t, fmt.Sprintf("Sgemm asm=%v vs float64", asm), "largest relative", worst, 1e-5)
		golden.Within(t, fmt.Sprintf("Sgemm asm=%v vs sgemmGeneric", asm), "largest relative", worstTwin, 1e-5)
	}
}

func TestSgemmKZero(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0.5, c, 2)
	for i, want := range []float32{0.5, 1, 1.5, 2} {
		if c[i] != want {
			t.Fatalf("k=0, beta=0.5: c[%d]=%g, want %g", i, c[i], want)
		}
	}
	Sgemm(false, false, 2, 2, 0, 1, nil, 1, nil, 2, 0, c, 2)
	for i := range c {
		if c[i] != 0 {
			t.Fatalf("k=0, beta=0: c[%d]=%g, want 0", i, c[i])
		}
	}
	Linear(nil, 2, 0, nil, 2, []float32{3, 4}, c)
	for i, want := range []float32{3, 4, 3, 4} {
		if c[i] != want {
			t.Fatalf("Linear with in=0: y[%d]=%g, want the bias %g", i, c[i], want)
		}
	}
	p := ConvParams{N: 1, C: 0, H: 2, W: 1, K: 2, KH: 1, KW: 1, StrideH: 1, StrideW: 1}
	Conv2D(p, nil, nil, []float32{5, 6}, c)
	for i, want := range []float32{5, 5, 6, 6} {
		if c[i] != want {
			t.Fatalf("Conv2D with C=0: y[%d]=%g, want the bias %g", i, c[i], want)
		}
	}
}
