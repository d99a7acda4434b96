package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"
)

// sgemmPaths are the kernel paths a test can select: AVX-512, AVX2 only, plain Go.
var sgemmPaths = []struct {
	name         string
	avx2, avx512 bool
}{{"avx512", true, true}, {"avx2", true, false}, {"go", false, false}}

// withSgemmPath runs f on path i if the CPU supports it (reporting false otherwise).
func withSgemmPath(i int, f func()) bool {
	p := sgemmPaths[i]
	s2, s512 := useAVX2, useAVX512
	defer func() { useAVX2, useAVX512 = s2, s512 }()
	if (p.avx2 && !s2) || (p.avx512 && !s512) {
		return false
	}
	useAVX2, useAVX512 = p.avx2, p.avx512
	f()
	return true
}

// sgemm512Diff is max|a−b| / max(1, max|b|).
func sgemm512Diff(a, b []float32) float64 {
	var d, mx float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		mx = math.Max(mx, math.Abs(float64(b[i])))
	}
	return d / math.Max(1, mx)
}

// TestSgemm512Paths compares the three paths with float64 and with sgemmGeneric on the usual cases
// and on shapes that fill 12×32 tiles with ragged edges, both with A packed (n > 512) and read in
// place (n ≤ 512), on one worker and on the shared-operand path.
func TestSgemm512Paths(t *testing.T) {
	cases := sgemmCases(true)
	i := 0
	for _, s := range [][3]int{{12, 32, 1}, {24, 64, 5}, {25, 70, 333}, {37, 520, 41}, {50, 600, 100}, {100, 100, 300}, {13, 47, 650}, {160, 1100, 20}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				ab := [][2]float32{{1, 0}, {1, 1}, {-0.5, 0.25}, {2, 1}}[i%4]
				cases = append(cases, sgemmCase{tA, tB, s[0], s[1], s[2], (i % 3) * 3, ab[0], ab[1]})
				i++
			}
		}
	}
	worst := map[string]float64{}
	for _, procs := range []int{1, 3} {
		old := runtime.GOMAXPROCS(procs)
		for _, tc := range cases {
			_, twin := runSgemmCase(t, tc, sgemmGeneric)
			for pi, p := range sgemmPaths {
				withSgemmPath(pi, func() {
					e, got := runSgemmCase(t, tc, Sgemm)
					d := sgemm512Diff(got, twin)
					worst[p.name] = math.Max(worst[p.name], e)
					worst[p.name+" vs twin"] = math.Max(worst[p.name+" vs twin"], d)
					if !(e <= 1e-5 && d <= 1e-5) { // NaN fails too
						t.Errorf("%s procs=%d %v: relative error %.3g vs float64, %.3g vs sgemmGeneric", p.name, procs, tc, e, d)
					}
				})
			}
		}
		runtime.GOMAXPROCS(old)
	}
	logWorst(t, "Sgemm", "largest relative", worst, 1e-5)
}

// TestConv2D512Paths runs Conv2D on the three paths, including batches whose images have an odd
// number of 16-pixel panels (a 32-column tile then spans two images).
func TestConv2D512Paths(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	ps := append(convCases(),
		ConvParams{N: 3, C: 10, H: 4, W: 12, K: 30, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		ConvParams{N: 2, C: 33, H: 12, W: 20, K: 40, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		ConvParams{N: 2, C: 20, H: 24, W: 24, K: 26, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		ConvParams{N: 3, C: 64, H: 12, W: 4, K: 50, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
		ConvParams{N: 1, C: 16, H: 30, W: 40, K: 25, KH: 3, KW: 5, StrideH: 1, StrideW: 2, PadH: 1, PadW: 2},
		ConvParams{N: 1, C: 3, H: 6, W: 20, K: 14, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 18},
		ConvParams{N: 2, C: 5, H: 7, W: 9, K: 13, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 2, PadW: 17})
	worst := map[string]float64{}
	for ci, p := range ps {
		oh, ow := p.OutSize()
		x, w := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*p.KH*p.KW)
		var bias []float32
		if ci%2 == 0 {
			bias = sgemmRandSlice(r, p.K)
		}
		ref := convRef(p, x, w, bias)
		twin := make([]float32, p.N*p.K*oh*ow)
		conv2DGeneric(p, x, w, bias, twin)
		for pi, path := range sgemmPaths {
			withSgemmPath(pi, func() {
				y := make([]float32, len(twin))
				for i := range y {
					y[i] = float32(math.NaN())
				}
				old := runtime.GOMAXPROCS(1 + ci%3)
				Conv2D(p, x, w, bias, y)
				runtime.GOMAXPROCS(old)
				e, d := convRelErr(y, ref), sgemm512Diff(y, twin)
				worst[path.name] = math.Max(worst[path.name], e)
				worst[path.name+" vs twin"] = math.Max(worst[path.name+" vs twin"], d)
				if !(e <= 1e-5 && d <= 1e-5) { // NaN fails too
					t.Errorf("Conv2D %s %s bias=%v: relative error %.3g vs float64, %.3g vs conv2DGeneric", path.name, convString(p), bias != nil, e, d)
				}
			})
		}
	}
	logWorst(t, "Sgemm", "largest relative", worst, 1e-5)
}

// TestLinear512Paths runs Linear (transposed B, row bias) on the three paths against float64.
func TestLinear512Paths(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	worst := map[string]float64{}
	for _, s := range [][3]int{{12, 40, 32}, {77, 320, 640}, {50, 64, 600}, {130, 33, 65}} {
		rows, in, out := s[0], s[1], s[2]
		x, w, bias := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in), sgemmRandSlice(r, out)
		ref := make([]float64, rows*out)
		for i := 0; i < rows; i++ {
			for o := 0; o < out; o++ {
				acc := float64(bias[o])
				for p := 0; p < in; p++ {
					acc += float64(x[i*in+p]) * float64(w[o*in+p])
				}
				ref[i*out+o] = acc
			}
		}
		for pi, path := range sgemmPaths {
			withSgemmPath(pi, func() {
				y := make([]float32, rows*out)
				for i := range y {
					y[i] = float32(math.NaN())
				}
				Linear(x, rows, in, w, out, bias, y)
				e := sgemmRelErr(y, out, ref, rows, out)
				worst[path.name] = math.Max(worst[path.name], e)
				if !(e <= 1e-5) {
					t.Errorf("Linear %s %s: relative error %.3g", path.name, fmt.Sprint(s), e)
				}
			})
		}
	}
	logWorst(t, "Sgemm vs float64", "largest relative", worst, 1e-5)
}

// TestSgemmFewRowsPaths covers every row count of the in-place-A AVX-512 kernels (1 to 12 rows,
// as the last rows of m = 1…25) with narrow and wide B (n > 512 takes the column-chunk split of
// GEMMs with few rows), ragged columns, and Linear's column bias on a weight packed at load.
func TestSgemmFewRowsPaths(t *testing.T) {
	r := rand.New(rand.NewSource(17))
	worst := map[string]float64{}
	for _, procs := range []int{1, 2} {
		old := runtime.GOMAXPROCS(procs)
		for m := 1; m <= 25; m++ {
			for ni, n := range []int{80, 600} {
				tc := sgemmCase{false, ni == 1, m, n, 37 + m%3, m % 2, [2]float32{1, -0.5}[m%2], [2]float32{0, 0.25}[m%2]}
				_, twin := runSgemmCase(t, tc, sgemmGeneric)
				x, w, bias := sgemmRandSlice(r, m*tc.k), sgemmRandSlice(r, n*tc.k), sgemmRandSlice(r, n)
				pw := PackWeight(w, n, tc.k)
				lref := make([]float32, m*n)
				linearGenericRef(x, m, tc.k, w, n, bias, lref)
				for pi, p := range sgemmPaths {
					withSgemmPath(pi, func() {
						e, got := runSgemmCase(t, tc, Sgemm)
						d := sgemm512Diff(got, twin)
						y := make([]float32, m*n)
						for i := range y {
							y[i] = float32(math.NaN())
						}
						LinearPacked(x, m, pw, bias, y)
						dl := sgemm512Diff(y, lref)
						worst[p.name] = math.Max(worst[p.name], e)
						worst[p.name+" vs twin"] = math.Max(worst[p.name+" vs twin"], math.Max(d, dl))
						if !(e <= 1e-5 && d <= 1e-5 && dl <= 1e-5) { // NaN fails too
							t.Errorf("%s procs=%d %v: relative error %.3g vs float64, %.3g vs sgemmGeneric, Linear %.3g", p.name, procs, tc, e, d, dl)
						}
					})
				}
			}
		}
		runtime.GOMAXPROCS(old)
	}
	logWorst(t, "Sgemm few rows", "largest relative", worst, 1e-5)
}

// linearGenericRef is Linear through the plain-Go twin sgemmGeneric: y = x·wᵀ + bias.
func linearGenericRef(x []float32, rows, in int, w []float32, out int, bias, y []float32) {
	for i := 0; i < rows; i++ {
		copy(y[i*out:(i+1)*out], bias)
	}
	sgemmGeneric(false, true, rows, out, in, 1, x, in, w, in, 1, y, out)
}
