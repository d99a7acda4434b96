package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
)

// bf16Paths are the ways LinearBF16 and Conv2DBF16 run: the AVX512-BF16 kernels, their plain-Go
// twin on the same pair panels, and the float32 kernels on widened weights (no AVX512-BF16, or
// it does not pay: bf16_select.go). Each is forced, whatever the measurement decided here, and
// with AMX off (it has its own tests, amx_amd64_test.go).
var bf16Paths = []string{"bf16-asm", "bf16-twin", "widen"}

// withBF16Path runs f on path name, reporting false where the CPU lacks it.
func withBF16Path(name string, f func()) bool {
	st, sf, sa := bf16Twin, bf16Force, useAMX
	defer func() { bf16Twin, bf16Force, useAMX = st, sf, sa }()
	useAMX = false
	switch name {
	case "bf16-asm":
		if !(useBF16 && useAVX2 && useAVX512) {
			return false
		}
		bf16Force = 1
	case "bf16-twin":
		bf16Twin = true
	case "widen":
		bf16Force = -1
	}
	f()
	return true
}

// bf16Round returns the values rounded to bf16 (bits and widened) as the twin rounds them.
func bf16Rounded(src []float32) ([]uint16, []float32) {
	h, f := make([]uint16, len(src)), make([]float32, len(src))
	for i, v := range src {
		h[i] = bf16FromF32(v)
		f[i] = bf16Float(uint32(h[i]))
	}
	return h, f
}

func TestF32ToBF16(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	src := []float32{0, float32(math.Copysign(0, -1)), 1, -1, 1.00390625, 1.01171875, 1.0078125, 3.4e38, -3.4e38,
		float32(math.Inf(1)), float32(math.Inf(-1)), math.Float32frombits(0x7fa00001), math.Float32frombits(0xffc00000),
		math.Float32frombits(0x00000001), math.Float32frombits(0x807fffff), math.Float32frombits(0x00800000),
		math.Float32frombits(0x7f7fffff), math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000)}
	for len(src) < 1000 {
		src = append(src, math.Float32frombits(r.Uint32()))
	}
	want := make([]uint16, len(src))
	for i, v := range src {
		want[i] = bf16FromF32(v)
	}
	if want[4] != 0x3f80 || want[5] != 0x3f82 || want[6] != 0x3f81 || want[17] != 0x3f80 || want[18] != 0x3f82 {
		t.Fatalf("twin does not round to nearest even: %#x", want[4:7])
	}
	if !useBF16 {
		t.Skip("CPU lacks AVX512-BF16: only the plain-Go rounding checked")
	}
	got := make([]uint16, len(src))
	F32ToBF16(got, src)
	pairs := make([]uint32, 16*((len(src)+31)/32))
	padded := append(append([]float32{}, src...), make([]float32, 32*len(pairs)/16-len(src))...)
	bf16PairRows(&pairs[0], &padded[0], len(pairs)/16)
	for i := range src {
		p := pairs[i/32*16+i%16] >> (16 * (i % 32 / 16))
		if got[i] != want[i] || uint16(p) != want[i] {
			t.Errorf("%#08x: VCVTNEPS2BF16 %#04x, VCVTNE2PS2BF16 %#04x, twin %#04x", math.Float32bits(src[i]), got[i], uint16(p), want[i])
		}
	}
}

// bf16LinearShapes are rows×in→out cases: odd sizes, edges of 12×32 tiles, odd k, the
// shared-operand and the many-rows splits.
var bf16LinearShapes = [][3]int{{1, 1, 1}, {5, 7, 9}, {13, 33, 47}, {12, 32, 32}, {25, 640, 70}, {37, 333, 100},
	{100, 320, 1100}, {7, 1281, 33}, {200, 96, 40}, {160, 641, 64}, {30, 66, 96}, {40, 64, 50}, {2, 1280, 1280}}

func TestLinearBF16Paths(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	worst := map[string]float64{}
	for i, s := range bf16LinearShapes {
		rows, in, out := s[0], s[1], s[2]
		x, wf := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in)
		wh, wr := bf16Rounded(wf)
		_, xr := bf16Rounded(x)
		var bias []float32
		if i%2 == 0 {
			bias = sgemmRandSlice(r, out)
		}
		refs := map[bool][]float64{} // by whether x is rounded
		for _, rx := range []bool{false, true} {
			xx := x
			if rx {
				xx = xr
			}
			ref := sgemmRef(false, true, rows, out, in, 1, xx, in, wr, in, 0, nil, out)
			for j := range ref {
				if bias != nil {
					ref[j] += float64(bias[j%out])
				}
			}
			refs[rx] = ref
		}
		for _, procs := range []int{1, 3} {
			old := runtime.GOMAXPROCS(procs)
			for _, path := range bf16Paths {
				ok := withBF16Path(path, func() {
					y := make([]float32, rows*out)
					for j := range y {
						y[j] = float32(math.NaN())
					}
					LinearBF16(x, rows, in, wh, out, bias, y)
					e := sgemmRelErr(y, out, refs[path != "widen"], rows, out)
					worst[path] = math.Max(worst[path], e)
					if !(e <= 1e-5) {
						t.Errorf("%s procs=%d %dx%d→%d: relative error %.3g vs float64 on bf16-rounded inputs", path, procs, rows, in, out, e)
					}
					// The same with the weights packed at load (bf16_packed.go).
					pw := PackLinearBF16(wh, out, in)
					if pw.Packed() != (path != "widen") || pw.Widened() != (path == "widen" && in > 0) {
						t.Errorf("%s: PackLinearBF16 packed %v, widened %v", path, pw.Packed(), pw.Widened())
					}
					if !slicesEqual(pw.Bits(), wh) {
						t.Errorf("%s %dx%d: the packed weight does not unpack to its bits", path, out, in)
					}
					for j := range y {
						y[j] = float32(math.NaN())
					}
					LinearBF16Packed(x, rows, pw, bias, y)
					e = sgemmRelErr(y, out, refs[path != "widen"], rows, out)
					worst[path+"-packed"] = math.Max(worst[path+"-packed"], e)
					if !(e <= 1e-5) {
						t.Errorf("%s packed procs=%d %dx%d→%d: relative error %.3g vs float64 on bf16-rounded inputs", path, procs, rows, in, out, e)
					}
				})
				if !ok && i == 0 && procs == 1 {
					t.Logf("%s skipped: the CPU lacks AVX512-BF16", path)
				}
			}
			runtime.GOMAXPROCS(old)
		}
	}
	logWorst(t, "LinearBF16 vs float64 on the rounded inputs", "largest relative", worst, 1e-5)
}

func TestConv2DBF16Paths(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	worst := map[string]float64{}
	cases := append(convCases(), ConvParams{N: 2, C: 35, H: 16, W: 16, K: 27, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1})
	for ci, p := range cases {
		oh, ow := p.OutSize()
		x, wf := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*p.KH*p.KW)
		wh, wr := bf16Rounded(wf)
		_, xr := bf16Rounded(x)
		var bias []float32
		if ci%2 == 0 {
			bias = sgemmRandSlice(r, p.K)
		}
		refs := map[bool][]float64{false: convRef(p, x, wr, bias), true: convRef(p, xr, wr, bias)}
		old := runtime.GOMAXPROCS(1 + ci%3)
		oldMax, oldMin := bf16PairedMaxBytes, bf16PairedMinPixels
		bf16PairedMinPixels = 1
		// With channel pairs where C is even (bf16_conv.go), and without (per-panel rounding).
		for _, maxBytes := range []int{oldMax, 0} {
			bf16PairedMaxBytes = maxBytes
			for _, path := range bf16Paths {
				withBF16Path(path, func() {
					y := make([]float32, p.N*p.K*oh*ow)
					for j := range y {
						y[j] = float32(math.NaN())
					}
					Conv2DBF16(p, x, wh, bias, y)
					e := convRelErr(y, refs[path != "widen"])
					worst[path] = math.Max(worst[path], e)
					if !(e <= 1e-5) {
						t.Errorf("%s %s (paired up to %d bytes): relative error %.3g vs float64 on bf16-rounded inputs", path, convString(p), maxBytes, e)
					}
					// The same with the weights packed at load (bf16_packed.go).
					pw := PackConvBF16(wh, p.K, p.C, p.KH, p.KW, p.StrideH)
					if !slicesEqual(pw.Bits(), wh) {
						t.Errorf("%s %s: the packed weight does not unpack to its bits", path, convString(p))
					}
					if WinogradApplies(p) { // Winograd on the weight not packed yet (its bits)
						want, got := make([]float32, len(y)), make([]float32, len(y))
						Conv2DWinogradBF16(p, x, wh, bias, want)
						Conv2DWinogradBF16Packed(p, x, pw, bias, got)
						if !slicesEqual(got, want) {
							t.Errorf("%s %s: Winograd on the unpacked weight differs from Winograd on its bits", path, convString(p))
						}
					}
					for j := range y {
						y[j] = float32(math.NaN())
					}
					Conv2DBF16Packed(p, x, pw, bias, y)
					if has := p.K > 0 && p.C > 0; pw.Packed() != (path != "widen" && has) || pw.Widened() != (path == "widen" && has) {
						t.Errorf("%s %s: packed %v, widened %v after a GEMM", path, convString(p), pw.Packed(), pw.Widened())
					}
					if !slicesEqual(pw.Bits(), wh) {
						t.Errorf("%s %s: the packed weight does not unpack to its bits after a GEMM", path, convString(p))
					}
					if pw.PackNow() {
						t.Errorf("%s %s: PackNow packed a packed weight", path, convString(p))
					}
					lazy := p.K > 0 && p.C > 0 && p.KH*p.KW > 1
					if got := PackConvBF16(wh, p.K, p.C, p.KH, p.KW, p.StrideH).PackNow(); got != lazy {
						t.Errorf("%s %s: PackNow on a new weight reported %v, want %v", path, convString(p), got, lazy)
					}
					e = convRelErr(y, refs[path != "widen"])
					worst[path+"-packed"] = math.Max(worst[path+"-packed"], e)
					if !(e <= 1e-5) {
						t.Errorf("%s packed %s (paired up to %d bytes): relative error %.3g vs float64 on bf16-rounded inputs", path, convString(p), maxBytes, e)
					}
					if WinogradApplies(p) { // Winograd reads the unpacked bits: the same output
						want, got := make([]float32, len(y)), make([]float32, len(y))
						Conv2DWinogradBF16(p, x, wh, bias, want)
						Conv2DWinogradBF16Packed(p, x, pw, bias, got)
						if !slicesEqual(got, want) {
							t.Errorf("%s %s: Winograd on the packed weight differs from Winograd on its bits", path, convString(p))
						}
					}
				})
			}
		}
		bf16PairedMaxBytes, bf16PairedMinPixels = oldMax, oldMin
		runtime.GOMAXPROCS(old)
	}
	if !useBF16 {
		t.Log("bf16-asm skipped: the CPU lacks AVX512-BF16")
	}
	logWorst(t, "Conv2DBF16 vs float64 on the rounded inputs", "largest relative", worst, 1e-5)
}

// BenchmarkConv2DBF16 runs BenchmarkConv2D's 3×3 convolutions with float32 weights, with bf16
// weights (on the bf16 path the CPU has), and with bf16 weights through Winograd.
func BenchmarkConv2DBF16(b *testing.B) {
	for _, s := range [][4]int{{2, 320, 64, 64}, {2, 640, 32, 32}, {2, 1280, 16, 16}, {2, 1280, 8, 8}, {1, 512, 64, 64}, {1, 256, 256, 256}, {1, 128, 256, 256}} {
		p := ConvParams{N: s[0], C: s[1], H: s[2], W: s[3], K: s[1], KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
		r := rand.New(rand.NewSource(1))
		x, wf := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9)
		wh, _ := bf16Rounded(wf)
		y := make([]float32, p.N*p.K*p.H*p.W)
		flops := 2 * float64(p.N*p.K*p.H*p.W*p.C*9)
		pw := PackConvBF16(wh, p.K, p.C, p.KH, p.KW, p.StrideH)
		for _, mode := range []string{"", "_bf16", "_bf16_packed", "_winograd_bf16"} {
			run := func() { Conv2D(p, x, wf, nil, y) }
			switch mode {
			case "_bf16":
				run = func() { Conv2DBF16(p, x, wh, nil, y) }
			case "_bf16_packed": // weights packed at load (PackConvBF16)
				run = func() { Conv2DBF16Packed(p, x, pw, nil, y) }
			case "_winograd_bf16": // bf16 weights widened into the float32 Winograd path
				run = func() { Conv2DWinogradBF16(p, x, wh, nil, y) }
			}
			name := fmt.Sprintf("%dx%dx%dx%d_3x3%s", s[0], s[1], s[2], s[3], mode)
			b.Run(name, func(b *testing.B) { sgemmBench(b, flops, run) })
		}
	}
}

// sgemmBench times run (after one warm-up call) and reports flops per call with sgemmReport.
func sgemmBench(b *testing.B, flops float64, run func()) {
	run()
	b.ResetTimer()
	cpu0 := benchutil.CPUSeconds()
	for i := 0; i < b.N; i++ {
		run()
	}
	sgemmReport(b, flops, cpu0)
}

// BenchmarkLinearBF16 runs UNet-sized projections with float32 and with bf16 weights.
func BenchmarkLinearBF16(b *testing.B) {
	for _, s := range [][3]int{{8192, 320, 320}, {2048, 640, 5120}, {2048, 2560, 640}, {154, 768, 3072}} {
		r := rand.New(rand.NewSource(1))
		x, wf := sgemmRandSlice(r, s[0]*s[1]), sgemmRandSlice(r, s[1]*s[2])
		wh, _ := bf16Rounded(wf)
		y := make([]float32, s[0]*s[2])
		pw := PackLinearBF16(wh, s[2], s[1])
		for _, mode := range []string{"", "_bf16", "_bf16_packed"} {
			run := func() { Linear(x, s[0], s[1], wf, s[2], nil, y) }
			switch mode {
			case "_bf16":
				run = func() { LinearBF16(x, s[0], s[1], wh, s[2], nil, y) }
			case "_bf16_packed": // weights packed at load (PackLinearBF16)
				run = func() { LinearBF16Packed(x, s[0], pw, nil, y) }
			}
			name := fmt.Sprintf("%dx%dx%d%s", s[0], s[1], s[2], mode)
			b.Run(name, func(b *testing.B) {
				run()
				b.ResetTimer()
				cpu0 := benchutil.CPUSeconds()
				for i := 0; i < b.N; i++ {
					run()
				}
				sgemmReport(b, 2*float64(s[0]*s[1]*s[2]), cpu0)
			})
		}
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestLinearBF16PackedParts checks LinearBF16PackedParts (packed bf16 weights, output split into
// parts) against float64 on the bf16-rounded inputs, on every bf16 path and one and three workers.
func TestLinearBF16PackedParts(t *testing.T) {
	r := rand.New(rand.NewSource(29))
	worst := map[string]float64{}
	shapes := append(linearPartsShapes, [4]int{300, 320, 3, 320}, [4]int{40, 77, 2, 48})
	for i, s := range shapes {
		rows, in, parts, part := s[0], s[1], s[2], s[3]
		out := parts * part
		x, wf := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in)
		wh, wr := bf16Rounded(wf)
		_, xr := bf16Rounded(x)
		var bias []float32
		if i%2 == 0 {
			bias = sgemmRandSlice(r, out)
		}
		refs := map[bool][]float64{}
		for _, rx := range []bool{false, true} {
			xx := x
			if rx {
				xx = xr
			}
			refs[rx] = sgemmRef(false, true, rows, out, in, 1, xx, in, wr, in, 0, nil, out)
			for j := range refs[rx] {
				if bias != nil {
					refs[rx][j] += float64(bias[j%out])
				}
			}
		}
		for _, procs := range []int{1, 3} {
			old := runtime.GOMAXPROCS(procs)
			for _, path := range bf16Paths {
				withBF16Path(path, func() {
					pw := PackLinearBF16(wh, out, in)
					y := make([]float32, rows*out)
					for j := range y {
						y[j] = float32(math.NaN())
					}
					LinearBF16PackedParts(x, rows, pw, bias, part, y)
					e := 0.0
					if rows*out > 0 {
						e = sgemmRelErr(unsplit(y, rows, parts, part), out, refs[path != "widen"], rows, out)
					}
					worst[path] = math.Max(worst[path], e)
					if !(e <= 1e-5) {
						t.Errorf("%s procs=%d %dx%d→%d×%d: relative error %.3g vs float64 on bf16-rounded inputs", path, procs, rows, in, parts, part, e)
					}
				})
			}
			runtime.GOMAXPROCS(old)
		}
	}
	logWorst(t, "LinearBF16PackedParts vs float64 on the rounded inputs", "largest relative", worst, 1e-5)
}
