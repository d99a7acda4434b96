package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
)

func winoCases() []ConvParams {
	c := func(n, ch, h, w, k, pad int) ConvParams {
		return ConvParams{N: n, C: ch, H: h, W: w, K: k, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: pad, PadW: pad}
	}
	return []ConvParams{
		c(1, 3, 8, 8, 5, 1),
		c(2, 7, 9, 13, 11, 1),
		c(1, 1, 1, 1, 1, 1),
		c(1, 2, 3, 3, 3, 0),
		c(3, 33, 19, 23, 37, 1),
		c(1, 64, 32, 40, 20, 1),
		c(2, 16, 8, 8, 24, 1),
		c(1, 5, 6, 70, 9, 2),
		c(2, 40, 16, 16, 70, 1),
		c(1, 20, 66, 67, 13, 1),  // more than one block, segments across tile rows
		c(2, 130, 12, 45, 40, 1), // channel counts that are not multiples of anything
		{N: 1, C: 4, H: 10, W: 9, K: 6, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 0, PadW: 1},
	}
}

// TestConv2DWinograd compares Winograd F(4×4, 3×3) with the float64 direct convolution on odd
// shapes, on every path (AVX-512, AVX2, plain Go) and with several worker counts.
func TestConv2DWinograd(t *testing.T) {
	saved, saved512 := useAVX2, useAVX512
	defer func() { useAVX2, useAVX512 = saved, saved512 }()
	r := rand.New(rand.NewSource(11))
	worst := map[string]float64{}
	for ci, p := range winoCases() {
		if !WinogradApplies(p) {
			t.Fatalf("%s: WinogradApplies false", convString(p))
		}
		oh, ow := p.OutSize()
		x := sgemmRandSlice(r, p.N*p.C*p.H*p.W)
		w := sgemmRandSlice(r, p.K*p.C*9)
		var bias []float32
		if ci%2 == 0 {
			bias = sgemmRandSlice(r, p.K)
		}
		ref := convRef(p, x, w, bias)
		f := NewWinogradFilter(w, p.K, p.C)
		for _, path := range []string{"avx512", "avx2", "go"} {
			if (path == "avx512" && !(saved && saved512)) || (path == "avx2" && !saved) {
				continue
			}
			useAVX2, useAVX512 = path != "go", path == "avx512"
			y := make([]float32, p.N*p.K*oh*ow)
			for i := range y {
				y[i] = float32(math.NaN())
			}
			old := runtime.GOMAXPROCS(1 + ci%3)
			Conv2DWinograd(p, x, f, bias, y)
			runtime.GOMAXPROCS(old)
			e := convRelErr(y, ref)
			worst[path] = math.Max(worst[path], e)
			if !(e <= 2e-5) {
				t.Errorf("%s %s bias=%v: relative error %.3g vs float64", path, convString(p), bias != nil, e)
			}
		}
	}
	logWorst(t, "Conv2DWinograd vs float64", "largest relative", worst, 2e-5)
}

// TestWinogradFilterF16 checks the half-precision filter transform against the float32 one on
// the widened weights.
func TestWinogradFilterF16(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	h, _ := sgemmRandHalf(r, 7*5*9)
	w := make([]float32, len(h))
	F16ToF32(w, h)
	a, b := NewWinogradFilter(w, 7, 5), NewWinogradFilterF16(h, 7, 5)
	for i := range a.u {
		if a.u[i] != b.u[i] {
			t.Fatalf("element %d: %v (float32 weights) vs %v (half)", i, a.u[i], b.u[i])
		}
	}
	if a.Bytes() != 4*36*7*5 {
		t.Errorf("Bytes %d", a.Bytes())
	}
}

// BenchmarkConv2DWinograd runs BenchmarkConv2D's convolutions (and the VAE's) through Winograd
// with the filters transformed on every call (Conv2DWinogradW, as nn runs it); GFLOP/s counts the
// direct convolution's FLOPs, so the figures compare with Conv2D's.
func BenchmarkConv2DWinograd(b *testing.B) {
	for _, s := range [][4]int{{2, 320, 64, 64}, {2, 640, 32, 32}, {2, 1280, 16, 16}, {2, 1280, 8, 8}, {1, 128, 256, 256}, {1, 512, 64, 64}, {1, 256, 128, 128}} {
		p := ConvParams{N: s[0], C: s[1], H: s[2], W: s[3], K: s[1], KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
		b.Run(fmt.Sprintf("%dx%dx%dx%d_3x3", s[0], s[1], s[2], s[3]), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			oh, ow := p.OutSize()
			x, w, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9), sgemmRandSlice(r, p.K)
			y := make([]float32, p.N*p.K*oh*ow)
			Conv2DWinogradW(p, x, w, bias, y)
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				Conv2DWinogradW(p, x, w, bias, y)
			}
			flops := 2 * float64(p.N*p.K*oh*ow) * float64(p.C*9)
			sgemmReport(b, flops, cpu0)
		})
	}
}

// TestWinogradTransforms compares the input and output transforms (assembly where the CPU has
// it: AVX-512, then AVX2) with their plain-Go twins on tile counts around the tile groups. The
// AVX2 kernels keep each group of 8 tiles in the lane order 0, 2, 4, 6, 1, 3, 5, 7.
func TestWinogradTransforms(t *testing.T) {
	saved, saved512 := useAVX2, useAVX512
	defer func() { useAVX2, useAVX512 = saved, saved512 }()
	r := rand.New(rand.NewSource(5))
	for _, path := range []string{"avx512", "avx2"} {
		if (path == "avx512" && !(saved && saved512)) || !saved {
			t.Logf("%s: not on this CPU, skipped", path)
			continue
		}
		useAVX2, useAVX512 = true, path == "avx512"
		for _, nt := range []int{1, 7, 8, 9, 15, 16, 17, 33, 48, 70, 100, 130} {
			// pos[t] is the column of M/V holding tile t.
			pos := make([]int, nt)
			for i := range pos {
				pos[i] = i
				if g := i / 8 * 8; path == "avx2" && g+8 <= nt {
					pos[i] = g + []int{0, 4, 1, 5, 2, 6, 3, 7}[i-g]
				}
			}
			ld := nt + 3
			ldr := (4*nt + 2 + 15) &^ 15
			strip := sgemmRandSlice(r, winoIn*ldr)
			got, want := make([]float32, winoXi*ld), make([]float32, winoXi*ld)
			winoInput(got, ld, strip, ldr, nt)
			winoInputGo(want, ld, strip, ldr, nt)
			perm := make([]float32, len(got))
			for xi := 0; xi < winoXi; xi++ {
				for i, p := range pos {
					perm[xi*ld+i] = got[xi*ld+p]
				}
			}
			if d := winoMaxDiff(perm, want); d > 1e-6 {
				t.Errorf("%s input transform, %d tiles: differs from winoInputGo by %g (relative)", path, nt, d)
			}
			m := sgemmRandSlice(r, winoXi*ld)
			mNat := make([]float32, len(m))
			for xi := 0; xi < winoXi; xi++ {
				for i, p := range pos {
					mNat[xi*ld+i] = m[xi*ld+p]
				}
			}
			ldo := 4*nt + 5
			got, want = make([]float32, 4*ldo), make([]float32, 4*ldo)
			winoOutput(got, ldo, m, ld, nt, 0.25)
			winoOutputGo(want, ldo, mNat, ld, nt, 0.25)
			if d := winoMaxDiff(got, want); d > 1e-6 {
				t.Errorf("%s output transform, %d tiles: differs from winoOutputGo by %g (relative)", path, nt, d)
			}
		}
	}
}

// winoMaxDiff is the largest difference between a and b relative to max(1, max|b|) (+Inf for a NaN).
func winoMaxDiff(a, b []float32) float64 {
	var d, mx float64
	for i := range a {
		e := math.Abs(float64(a[i] - b[i]))
		if e != e {
			return math.Inf(1)
		}
		d, mx = math.Max(d, e), math.Max(mx, math.Abs(float64(b[i])))
	}
	return d / math.Max(1, mx)
}

// BenchmarkConvChoice times the direct convolution (Conv2D), Winograd with the per-call filter
// transform (Conv2DWinogradW) and Winograd on filters transformed beforehand (Conv2DWinograd) on the 3×3 stride-1 convolutions of small-sd's UNet
// (batch 2) and the SD VAE decoder (batch 1), N×C×H×W→K; nn's useWinograd follows it.
//
//	go test ./internal/kernels -run '^$' -bench ConvChoice
func BenchmarkConvChoice(b *testing.B) {
	for _, s := range [][5]int{
		{2, 4, 64, 64, 320}, {2, 320, 64, 64, 320}, {2, 640, 64, 64, 320}, {2, 640, 64, 64, 640},
		{2, 320, 32, 32, 640}, {2, 640, 32, 32, 640}, {2, 1280, 32, 32, 1280}, {2, 1280, 32, 32, 640},
		{2, 640, 16, 16, 1280}, {2, 1280, 16, 16, 1280}, {2, 2560, 16, 16, 1280},
		{2, 1280, 8, 8, 1280}, {2, 2560, 8, 8, 1280},
		{1, 4, 64, 64, 512}, {1, 512, 64, 64, 512}, {1, 512, 128, 128, 512}, {1, 512, 256, 256, 512},
		{1, 512, 256, 256, 256}, {1, 256, 256, 256, 256}, {1, 256, 512, 512, 256}, {1, 256, 512, 512, 128},
		{1, 128, 512, 512, 128}, {1, 128, 512, 512, 3}, {1, 32, 64, 64, 32}, {1, 64, 32, 32, 64},
	} {
		p := ConvParams{N: s[0], C: s[1], H: s[2], W: s[3], K: s[4], KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
		oh, ow := p.OutSize()
		var x, w, bias, y []float32 // made by the first sub-benchmark that runs
		var f *WinogradFilter
		flops := 2 * float64(p.N*p.K*oh*ow) * float64(p.C*9)
		for _, mode := range []string{"direct", "winograd", "winograd_pre"} {
			name := fmt.Sprintf("%dx%dx%dx%d→%d/%s", s[0], s[1], s[2], s[3], s[4], mode)
			b.Run(name, func(b *testing.B) {
				if x == nil {
					r := rand.New(rand.NewSource(1))
					x, w, bias = sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9), sgemmRandSlice(r, p.K)
					y = make([]float32, p.N*p.K*oh*ow)
					b.ResetTimer()
				}
				if mode == "winograd_pre" && f == nil {
					b.StopTimer()
					f = NewWinogradFilter(w, p.K, p.C)
					b.StartTimer()
				}
				cpu0 := benchutil.CPUSeconds()
				for i := 0; i < b.N; i++ {
					switch mode {
					case "winograd":
						Conv2DWinogradW(p, x, w, bias, y)
					case "winograd_pre":
						Conv2DWinograd(p, x, f, bias, y)
					default:
						Conv2D(p, x, w, bias, y)
					}
				}
				sgemmReport(b, flops, cpu0)
			})
		}
	}
}

// TestConv2DWinogradHalfBits checks that the half and bfloat16 variants equal Conv2DWinogradW on
// the widened weights exactly.
func TestConv2DWinogradHalfBits(t *testing.T) {
	r := rand.New(rand.NewSource(4))
	p := ConvParams{N: 2, C: 9, H: 11, W: 21, K: 7, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	oh, ow := p.OutSize()
	x, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K)
	h, _ := sgemmRandHalf(r, p.K*p.C*9)
	bf := make([]uint16, len(h))
	for i := range bf {
		bf[i] = uint16(r.Uint32())&0x3fff | 0x3c00 // finite bfloat16 values of moderate size
	}
	for _, c := range []struct {
		name  string
		bits  []uint16
		run   func(ConvParams, []float32, []uint16, []float32, []float32)
		widen func([]float32, []uint16)
	}{{"f16", h, Conv2DWinogradF16, F16ToF32}, {"bf16", bf, Conv2DWinogradBF16, BF16ToF32}} {
		w := make([]float32, len(c.bits))
		c.widen(w, c.bits)
		got, want := make([]float32, p.N*p.K*oh*ow), make([]float32, p.N*p.K*oh*ow)
		c.run(p, x, c.bits, bias, got)
		Conv2DWinogradW(p, x, w, bias, want)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: element %d is %v, want %v (Conv2DWinogradW on the widened weights)", c.name, i, got[i], want[i])
			}
		}
	}
}

// TestConv2DWinogradBlocked runs Conv2DWinogradW (filters transformed during the call) with the
// workspace bounds shrunk so that the filters go in blocks of input and output channels, the tiles
// in several blocks, and tile rows one by one or side by side, with the filters transformed for
// all workers (modes 0–2) or inside the GEMM workers (fused, modes 3–4), on every path, against
// the float64 direct convolution.
func TestConv2DWinogradBlocked(t *testing.T) {
	saved, saved512 := useAVX2, useAVX512
	bm, tm, fw, fb, cb, rt := winoBlockMax, winoTilesMax, winoFilterWhole, winoFilterBlock, winoChanBlock, winoRowTiles
	ft, fr, fc := winoFusedTiles, winoFusedRows, winoFusedChan
	defer func() {
		useAVX2, useAVX512 = saved, saved512
		winoBlockMax, winoTilesMax, winoFilterWhole, winoFilterBlock, winoChanBlock, winoRowTiles = bm, tm, fw, fb, cb, rt
		winoFusedTiles, winoFusedRows, winoFusedChan = ft, fr, fc
	}()
	r := rand.New(rand.NewSource(12))
	worst := map[string]float64{}
	for ci, p := range winoCases() {
		oh, ow := p.OutSize()
		x := sgemmRandSlice(r, p.N*p.C*p.H*p.W)
		w := sgemmRandSlice(r, p.K*p.C*9)
		bias := sgemmRandSlice(r, p.K)
		ref := convRef(p, x, w, bias)
		for _, path := range []string{"avx512", "avx2", "go"} {
			if (path == "avx512" && !(saved && saved512)) || (path == "avx2" && !saved) {
				continue
			}
			useAVX2, useAVX512 = path != "go", path == "avx512"
			for mode := 0; mode < 5; mode++ {
				winoFilterWhole, winoFilterBlock, winoChanBlock = 0, winoXi*12*5, 5 // blocked filters
				winoBlockMax, winoTilesMax = winoXi*(5+p.K)*48, 48+16*(mode%3)
				winoRowTiles = []int{1, 16, 1 << 20, 1, 16}[mode] // rows alone, as in use, all side by side
				winoFusedTiles, winoFusedRows, winoFusedChan = 0, fr, fc
				switch mode {
				case 2:
					winoFilterWhole = fw // filters whole
				case 3: // fused, in blocks of 5 input channels
					winoFusedTiles, winoFusedChan = 1<<30, 5
				case 4: // fused, 24 output channels a worker's block
					winoFusedTiles, winoFusedRows, winoBlockMax = 1<<30, 24, bm
				}
				y := make([]float32, p.N*p.K*oh*ow)
				for i := range y {
					y[i] = float32(math.NaN())
				}
				old := runtime.GOMAXPROCS(1 + (ci+mode)%3)
				Conv2DWinogradW(p, x, w, bias, y)
				runtime.GOMAXPROCS(old)
				e := convRelErr(y, ref)
				worst[path] = math.Max(worst[path], e)
				if !(e <= 2e-5) {
					t.Errorf("%s mode %d %s: relative error %.3g vs float64", path, mode, convString(p), e)
				}
			}
		}
	}
	t.Logf("largest relative error vs float64: %v", worst)
}

// TestWinogradFilters compares the filter transform kernels (AVX-512, AVX2) with winoFiltersGo on
// filter counts around their groups: the same operations in the same order, so equal bits.
func TestWinogradFilters(t *testing.T) {
	saved, saved512 := useAVX2, useAVX512
	defer func() { useAVX2, useAVX512 = saved, saved512 }()
	r := rand.New(rand.NewSource(6))
	for _, path := range []string{"avx512", "avx2"} {
		if (path == "avx512" && !(saved && saved512)) || !saved {
			t.Logf("%s: not on this CPU, skipped", path)
			continue
		}
		useAVX2, useAVX512 = true, path == "avx512"
		for _, nt := range []int{1, 7, 8, 9, 15, 16, 17, 33, 48, 70, 100, 130} {
			w := sgemmRandSlice(r, 9*nt)
			ld := nt + 5
			got, want := make([]float32, winoXi*ld), make([]float32, winoXi*ld)
			winoFilters(got, ld, w, nt)
			winoFiltersGo(want, ld, w, nt)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%s, %d filters: element %d (ξ %d, filter %d) is %v, want %v", path, nt, i, i/ld, i%ld, got[i], want[i])
				}
			}
		}
	}
}

// TestWinogradInPlace checks that reading the inner tiles of a row in place gives the strip
// path's results bit for bit, on both kernel paths, with padding 0 and 1, rows of whole and
// partial groups, blocks that cut rows, and bands (PadH 0).
func TestWinogradInPlace(t *testing.T) {
	saved, saved512, bm := useAVX2, useAVX512, winoBlockMax
	defer func() { useAVX2, useAVX512, winoInPlace, winoBlockMax = saved, saved512, true, bm }()
	r := rand.New(rand.NewSource(14))
	for _, p := range []ConvParams{
		{N: 1, C: 5, H: 12, W: 512, K: 7, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 2, C: 6, H: 14, W: 301, K: 5, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 0, PadW: 1},
		{N: 1, C: 3, H: 9, W: 140, K: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 0},
	} {
		oh, ow := p.OutSize()
		x, w, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9), sgemmRandSlice(r, p.K)
		for _, path := range []string{"avx512", "avx2"} {
			if (path == "avx512" && !(saved && saved512)) || !saved {
				t.Logf("%s: not on this CPU", path)
				continue
			}
			useAVX2, useAVX512 = true, path == "avx512"
			for _, blk := range []int{bm, winoXi * (p.C + p.K) * 48} { // whole rows, and blocks of 48 tiles
				winoBlockMax = blk
				var want, got []float32
				for _, on := range []bool{false, true} {
					winoInPlace = on
					y := make([]float32, p.N*p.K*oh*ow)
					Conv2DWinogradW(p, x, w, bias, y)
					if on {
						got = y
					} else {
						want = y
					}
				}
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s %s, blocks %d: value %d is %v in place, %v through the strip", path, convString(p), blk, i, got[i], want[i])
					}
				}
			}
		}
	}
}
