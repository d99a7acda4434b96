package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// actInputs returns random values of several magnitudes plus the special and boundary cases.
func actInputs(n int) []float32 {
	r := rand.New(rand.NewSource(8))
	x := make([]float32, 0, n+32)
	for i := 0; i < n; i++ {
		x = append(x, float32(r.NormFloat64()*math.Pow(10, float64(r.Intn(4)-1))))
	}
	return append(x, 0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 4, -4, 5, -5, 9, -9, 12, -12, 12.01, -12.01, 13.3, -13.3, 30, -30,
		80, -80, 88, -88, 88.7, -87.3, 100, -100, 200, -200, 1e10, -1e10,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()))
}

// checkUnary compares f (fast and plain) with ref, element by element, against tolerance
// absTol + relTol·|ref|, for lengths around the vector width and in place.
func checkUnary(t *testing.T, name string, f func(dst, src []float32), ref func(float64) float64, absTol, relTol float64) {
	x := actInputs(1000)
	for _, n := range []int{0, 1, 7, 8, 9, 17, 31, len(x)} {
		src := x[len(x)-n:]
		fast, plain := make([]float32, n), make([]float32, n)
		f(fast, src)
		withAVX2(false, func() { f(plain, src) })
		var worstAbs, worstRel float64
		for i, v := range src {
			want := float64(float32(ref(float64(v)))) // rounded, so overflow is +Inf
			for _, got := range []float32{fast[i], plain[i]} {
				g := float64(got)
				if math.IsInf(want, 0) || math.IsNaN(want) {
					if g != want && !(math.IsNaN(want) && math.IsNaN(g)) {
						t.Errorf("%s(%g) = %g, want %g", name, v, g, want)
					}
					continue
				}
				e := math.Abs(g - want)
				worstAbs = math.Max(worstAbs, e)
				if math.Abs(want) >= 1e-30 { // below, float32 overflow and subnormal steps dominate
					worstRel = math.Max(worstRel, e/math.Abs(want))
				}
				if e > absTol+relTol*math.Abs(want) {
					t.Errorf("%s(%g) = %g, want %g (error %.3g)", name, v, g, want, e)
				}
			}
		}
		if n == len(x) {
			t.Logf("%s: max abs error %.3g, max rel error %.3g (where |result| ≥ 1e-30) over %d inputs", name, worstAbs, worstRel, n)
		}
		inPlace := append([]float32(nil), src...)
		f(inPlace, inPlace)
		for i := range inPlace {
			if math.Float32bits(inPlace[i]) != math.Float32bits(fast[i]) {
				t.Errorf("%s in place: %g vs %g at %d", name, inPlace[i], fast[i], i)
				break
			}
		}
	}
}

// closeF32 reports whether a and b agree to a few ulp (the fast path need not match the twin bit
// for bit, only both the reference).
func closeF32(a, b float32) bool {
	if a == b || (a != a && b != b) {
		return true
	}
	return math.Abs(float64(a)-float64(b)) <= 4e-7*math.Max(math.Abs(float64(a)), 1e-30)+1e-38
}

func TestExp(t *testing.T) {
	checkUnary(t, "Exp", Exp, math.Exp, 1e-38, 3e-7)
}

func TestSiLU(t *testing.T) {
	// Below about −88, e^−x overflows float32 and SiLU is −0 (as in torch); the true value is < 1e-36.
	checkUnary(t, "SiLU", SiLU, func(x float64) float64 { return x / (1 + math.Exp(-x)) }, 1e-36, 5e-7)
}

func TestQuickGELU(t *testing.T) {
	// 1.702 and 1.702·x are rounded to float32 first, as torch's float32 kernel does; that rounding
	// alone moves e^(−1.702x) by up to |1.702x|·2^-24 relative.
	checkUnary(t, "QuickGELU", QuickGELU, func(x float64) float64 {
		return x / (1 + math.Exp(-float64(float32(1.702)*float32(x))))
	}, 1e-36, 5e-7)
}

func TestGELU(t *testing.T) {
	// The reference uses erfc: 1 + erf(x) cancels in the negative tail even in float64.
	checkUnary(t, "GELU", GELU, func(x float64) float64 { return 0.5 * x * math.Erfc(-x/math.Sqrt2) }, 1e-6, 1e-6)
}

func TestGEGLU(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	for _, s := range []struct{ rows, cols int }{{1, 1}, {3, 5}, {7, 33}, {64, 1280}} {
		src := randSlice(r, s.rows*2*s.cols, 2)
		fast, plain := make([]float32, s.rows*s.cols), make([]float32, s.rows*s.cols)
		GEGLU(fast, src, s.rows, s.cols)
		withAVX2(false, func() { GEGLU(plain, src, s.rows, s.cols) })
		var worst float64
		for i := 0; i < s.rows; i++ {
			for j := 0; j < s.cols; j++ {
				a, g := float64(src[i*2*s.cols+j]), float64(src[i*2*s.cols+s.cols+j])
				want := a * 0.5 * g * math.Erfc(-g/math.Sqrt2)
				for _, got := range []float32{fast[i*s.cols+j], plain[i*s.cols+j]} {
					e := math.Abs(float64(got) - want)
					// GELU's absolute error is about 1e-7·|g| (erf's error times g/2), and a multiplies it.
					worst = math.Max(worst, e/math.Max(1, math.Abs(a)*math.Max(1, math.Abs(g))))
				}
			}
		}
		golden.Within(t, fmt.Sprintf("GEGLU %v", s), "max scaled", worst, 1e-6)
		GEGLU(src, src, s.rows, s.cols)
		for i := range fast {
			if !closeF32(src[i], fast[i]) {
				t.Fatalf("%v: in-place GEGLU differs at %d: %g vs %g", s, i, src[i], fast[i])
			}
		}
	}
}

// TestErfcApprox scans the erfc approximation behind GELU against math.Erfc (relative error), and
// GELU itself, both paths, against the float64 definition: absolute error everywhere, relative
// error for −6 ≤ x < 0. (Further out, the float32 rounding of the exponent −z², about 2^-24·z²
// relative, dominates: 1e-5 at x = −12, where GELU is 1e-32.)
func TestErfcApprox(t *testing.T) {
	var worst, worstAt float64
	for z := 0.0; z <= 6/math.Sqrt2; z += 1e-4 {
		want := math.Erfc(float64(float32(z)))
		e := math.Abs(float64(actErfcGo(float32(z)*math.Sqrt2))-math.Erfc(float64(float32(z)*math.Sqrt2)/math.Sqrt2)) / want
		if e > worst {
			worst, worstAt = e, z
		}
	}
	golden.Within(t, fmt.Sprintf("erfc approximation (worst at %.4f)", worstAt), "max rel", worst, 1.5e-6)
	// GELU on a fine grid, both paths, against the float64 definition.
	xs := make([]float32, 0, 120001)
	for x := -12.0; x <= 6; x += 1e-4 {
		xs = append(xs, float32(x))
	}
	for _, avx := range []bool{true, false} {
		y := make([]float32, len(xs))
		withAVX2(avx, func() { GELU(y, xs) })
		var we, wr float64
		for i, x := range xs {
			want := 0.5 * float64(x) * math.Erfc(-float64(x)/math.Sqrt2)
			e := math.Abs(float64(y[i]) - want)
			we = math.Max(we, e)
			if x < 0 && x >= -6 {
				wr = math.Max(wr, e/math.Abs(want))
			}
		}
		golden.Within(t, fmt.Sprintf("GELU avx=%v on [-12, 6]", avx), "max abs", we, 1e-6)
		golden.Within(t, fmt.Sprintf("GELU avx=%v on [-6, 0)", avx), "max rel", wr, 3e-6)
	}
}

// TestGEGLU512 checks that the AVX-512 GEGLU kernel gives the AVX2 kernel's bits (the same
// operations in the same order), on random values, both tails, zeros, infinities and NaN, and
// lengths that leave an AVX2 and a plain-Go remainder.
func TestGEGLU512(t *testing.T) {
	if !useAVX2 || !useAVX512 || !useAVX512DQ {
		t.Skip("CPU lacks AVX-512 (F, VL, DQ): the AVX-512 GEGLU kernel cannot run here")
	}
	r := rand.New(rand.NewSource(10))
	special := []float32{0, float32(math.Copysign(0, -1)), 1e-30, -1e-30, 5, -5, 9.5, -9.5, 14, -14, 88, -88, 200, -200,
		float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}
	for _, cols := range []int{16, 37, 1280} {
		rows := 9
		src := randSlice(r, rows*2*cols, 6)
		for i := range src {
			if i%5 == 0 {
				src[i] = special[(i/5)%len(special)]
			}
		}
		fast, avx2 := make([]float32, rows*cols), make([]float32, rows*cols)
		GEGLU(fast, src, rows, cols)
		old := useAVX512
		useAVX512 = false
		GEGLU(avx2, src, rows, cols)
		useAVX512 = old
		for i := range fast {
			if math.Float32bits(fast[i]) != math.Float32bits(avx2[i]) && !(fast[i] != fast[i] && avx2[i] != avx2[i]) {
				t.Fatalf("%d columns, element %d (gate %g): AVX-512 %g, AVX2 %g", cols, i, src[(i/cols)*2*cols+cols+i%cols], fast[i], avx2[i])
			}
		}
	}
}
