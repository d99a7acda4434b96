package kernels

import (
	"math/rand"
	"runtime"
	"testing"
)

func TestElementWise(t *testing.T) {
	r := rand.New(rand.NewSource(10))
	for _, n := range []int{0, 1, 7, 8, 33, 100003} {
		a, b := randSlice(r, n, 1), randSlice(r, n, 1)
		for _, avx := range []bool{true, false} {
			withAVX2(avx, func() {
				dst := make([]float32, n)
				Add(dst, a, b)
				for i := range dst {
					if dst[i] != a[i]+b[i] {
						t.Fatalf("Add n=%d avx=%v: wrong at %d", n, avx, i)
					}
				}
				Scale(dst, a, 0.3)
				for i := range dst {
					if dst[i] != a[i]*0.3 {
						t.Fatalf("Scale n=%d avx=%v: wrong at %d", n, avx, i)
					}
				}
				copy(dst, a)
				Add(dst, dst, b)
				for i := range dst {
					if dst[i] != a[i]+b[i] {
						t.Fatalf("Add in place n=%d avx=%v: wrong at %d", n, avx, i)
					}
				}
			})
		}
	}
}

func TestAddChannelBias(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for _, s := range []struct{ n, c, hw int }{{1, 1, 1}, {2, 3, 5}, {2, 320, 64 * 64}, {1, 7, 9}, {3, 4, 17}} {
		for _, perSample := range []bool{true, false} {
			for _, avx := range []bool{true, false} {
				x := randSlice(r, s.n*s.c*s.hw, 1)
				bias := randSlice(r, s.c, 1)
				if perSample {
					bias = randSlice(r, s.n*s.c, 1)
				}
				want := append([]float32(nil), x...)
				for i := range want {
					bi := i / s.hw
					if !perSample {
						bi %= s.c
					}
					want[i] += bias[bi]
				}
				dst := make([]float32, len(x))
				withAVX2(avx, func() {
					AddChannelBiasTo(dst, x, s.n, s.c, s.hw, bias)
					AddChannelBias(x, s.n, s.c, s.hw, bias)
				})
				for i := range x {
					if x[i] != want[i] || dst[i] != want[i] {
						t.Fatalf("%v perSample=%v avx=%v: wrong at %d", s, perSample, avx, i)
					}
				}
			}
		}
	}
}

func TestAddRepeat(t *testing.T) {
	r := rand.New(rand.NewSource(20))
	for _, s := range []struct{ rows, m int }{{1, 1}, {3, 5}, {7, 8}, {5000, 16}, {100, 320}, {2, 77 * 768}} {
		for _, avx := range []bool{true, false} {
			a, b := randSlice(r, s.rows*s.m, 1), randSlice(r, s.m, 1)
			dst := make([]float32, len(a))
			withAVX2(avx, func() { AddRepeat(dst, a, b) })
			for i := range dst {
				if dst[i] != a[i]+b[i%s.m] {
					t.Fatalf("%v avx=%v: wrong at %d", s, avx, i)
				}
			}
			withAVX2(avx, func() { AddRepeat(a, a, b) })
			for i := range dst {
				if a[i] != dst[i] {
					t.Fatalf("%v avx=%v in place: wrong at %d", s, avx, i)
				}
			}
		}
	}
}

func TestUpsampleNearest2x(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	for _, s := range []struct{ nc, h, w int }{{1, 1, 1}, {2, 3, 5}, {3, 8, 8}, {640, 32, 32}, {1, 7, 13}} {
		for _, avx := range []bool{true, false} {
			src := randSlice(r, s.nc*s.h*s.w, 1)
			dst := make([]float32, 4*len(src))
			withAVX2(avx, func() { UpsampleNearest2x(dst, src, s.nc, s.h, s.w) })
			for p := 0; p < s.nc; p++ {
				for y := 0; y < 2*s.h; y++ {
					for x := 0; x < 2*s.w; x++ {
						if dst[(p*2*s.h+y)*2*s.w+x] != src[(p*s.h+y/2)*s.w+x/2] {
							t.Fatalf("%v avx=%v: wrong at plane %d (%d,%d)", s, avx, p, y, x)
						}
					}
				}
			}
		}
	}
}

func TestTranspose(t *testing.T) {
	r := rand.New(rand.NewSource(13))
	for _, s := range []struct{ b, rows, cols int }{{1, 1, 1}, {1, 1, 9}, {2, 3, 5}, {2, 33, 65}, {1, 320, 4096}, {3, 8, 8}} {
		for _, avx := range []bool{true, false} {
			src := randSlice(r, s.b*s.rows*s.cols, 1)
			dst := make([]float32, len(src))
			withAVX2(avx, func() { Transpose(dst, src, s.b, s.rows, s.cols) })
			for b := 0; b < s.b; b++ {
				for i := 0; i < s.rows; i++ {
					for j := 0; j < s.cols; j++ {
						if dst[(b*s.cols+j)*s.rows+i] != src[(b*s.rows+i)*s.cols+j] {
							t.Fatalf("%v avx=%v: wrong at batch %d (%d,%d)", s, avx, b, i, j)
						}
					}
				}
			}
		}
	}
}

func TestConcatChannels(t *testing.T) {
	r := rand.New(rand.NewSource(14))
	n, ca, cb, hw := 2, 3, 5, 7
	a, b := randSlice(r, n*ca*hw, 1), randSlice(r, n*cb*hw, 1)
	dst := make([]float32, n*(ca+cb)*hw)
	ConcatChannels(dst, a, b, n, ca, cb, hw)
	for i := 0; i < n; i++ {
		for c := 0; c < ca+cb; c++ {
			for p := 0; p < hw; p++ {
				var want float32
				if c < ca {
					want = a[(i*ca+c)*hw+p]
				} else {
					want = b[(i*cb+c-ca)*hw+p]
				}
				if got := dst[(i*(ca+cb)+c)*hw+p]; got != want {
					t.Fatalf("sample %d channel %d: %g, want %g", i, c, got, want)
				}
			}
		}
	}
}

// TestElementWiseAllocs checks that no element-wise, activation or norm call allocates once the
// pools are warm (with one goroutine: parallelFor's own goroutines allocate when work is split).
func TestElementWiseAllocs(t *testing.T) {
	if raceBuild {
		t.Skip("sync.Pool drops items at random under -race")
	}
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	r := rand.New(rand.NewSource(17))
	const rows, cols = 64, 96
	a, b := randSlice(r, 2*rows*cols, 1), randSlice(r, 2*rows*cols, 1)
	dst, big := make([]float32, 2*rows*cols), make([]float32, 8*rows*cols)
	g, be := randSlice(r, cols, 1), randSlice(r, cols, 1)
	for name, f := range map[string]func(){
		"Add":               func() { Add(dst, a, b) },
		"Scale":             func() { Scale(dst, a, 0.5) },
		"SiLU":              func() { SiLU(dst, a) },
		"QuickGELU":         func() { QuickGELU(dst, a) },
		"GELU":              func() { GELU(dst, a) },
		"GEGLU":             func() { GEGLU(dst, a, rows, cols) },
		"LayerNorm":         func() { LayerNorm(a, dst, rows, cols, 1e-5, g, be) },
		"AddChannelBias":    func() { AddChannelBias(dst, 2, rows, cols, a[:2*rows]) },
		"AddRepeat":         func() { AddRepeat(dst, a, b[:cols]) },
		"UpsampleNearest2x": func() { UpsampleNearest2x(big, a, 2, rows, cols) },
		"Transpose":         func() { Transpose(dst, a, 2, rows, cols) },
	} {
		f()
		if n := testing.AllocsPerRun(10, f); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

// BenchmarkElementWise measures the element-wise kernels on UNet-sized tensors (64×64 latents,
// batch 2); GB/s counts one read of each input and one write of the output.
func BenchmarkElementWise(b *testing.B) {
	r := rand.New(rand.NewSource(19))
	const n, c, hw = 2, 320, 64 * 64
	x, y := randSlice(r, n*c*hw, 1), randSlice(r, n*c*hw, 1)
	dst, big := make([]float32, n*c*hw), make([]float32, 4*n*c*hw)
	bias := randSlice(r, n*c, 1)
	g, be := randSlice(r, c, 1), randSlice(r, c, 1)
	for _, bm := range []struct {
		name  string
		bytes int
		f     func()
	}{
		{"Add/2x320x64x64", 12 * n * c * hw, func() { Add(dst, x, y) }},
		{"AddChannelBias/2x320x64x64", 8 * n * c * hw, func() { AddChannelBias(dst, n, c, hw, bias) }},
		{"SiLU/2x320x64x64", 8 * n * c * hw, func() { SiLU(dst, x) }},
		{"GELU/2x320x64x64", 8 * n * c * hw, func() { GELU(dst, x) }},
		{"GEGLU/8192x1280", 12 * n * c * hw / 2, func() { GEGLU(dst, x, n*hw/4, 2*c) }},
		{"LayerNorm/8192x320", 8 * n * c * hw, func() { LayerNorm(x, dst, n*hw, c, 1e-5, g, be) }},
		{"Transpose/2x320x4096", 8 * n * c * hw, func() { Transpose(dst, x, n, c, hw) }},
		{"UpsampleNearest2x/640x64x64", 20 * n * c * hw, func() { UpsampleNearest2x(big, x, n*c, 64, 64) }},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.SetBytes(int64(bm.bytes))
			for i := 0; i < b.N; i++ {
				bm.f()
			}
		})
	}
}
