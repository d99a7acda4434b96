package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
)

// convRef is the float64 reference convolution.
func convRef(p ConvParams, x, w, bias []float32) []float64 {
	oh, ow := p.OutSize()
	y := make([]float64, p.N*p.K*oh*ow)
	for n := 0; n < p.N; n++ {
		for k := 0; k < p.K; k++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					var s float64
					if bias != nil {
						s = float64(bias[k])
					}
					for c := 0; c < p.C; c++ {
						for kh := 0; kh < p.KH; kh++ {
							iy := oy*p.StrideH + kh - p.PadH
							if iy < 0 || iy >= p.H {
								continue
							}
							for kw := 0; kw < p.KW; kw++ {
								ix := ox*p.StrideW + kw - p.PadW
								if ix < 0 || ix >= p.W {
									continue
								}
								s += float64(x[((n*p.C+c)*p.H+iy)*p.W+ix]) * float64(w[((k*p.C+c)*p.KH+kh)*p.KW+kw])
							}
						}
					}
					y[((n*p.K+k)*oh+oy)*ow+ox] = s
				}
			}
		}
	}
	return y
}

func convCases() []ConvParams {
	return []ConvParams{
		{N: 1, C: 3, H: 8, W: 8, K: 5, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 2, C: 7, H: 9, W: 13, K: 11, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 2, C: 5, H: 10, W: 7, K: 6, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 1, C: 16, H: 17, W: 16, K: 8, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 2, C: 9, H: 6, W: 11, K: 13, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
		{N: 1, C: 4, H: 12, W: 9, K: 7, KH: 4, KW: 4, StrideH: 1, StrideW: 1},
		{N: 1, C: 3, H: 11, W: 11, K: 2, KH: 4, KW: 4, StrideH: 4, StrideW: 4},
		{N: 1, C: 1, H: 1, W: 1, K: 1, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
		{N: 1, C: 2, H: 5, W: 9, K: 3, KH: 3, KW: 5, StrideH: 2, StrideW: 1, PadH: 0, PadW: 2},
		{N: 3, C: 33, H: 19, W: 23, K: 37, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 1, C: 64, H: 32, W: 40, K: 20, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 2, C: 70, H: 24, W: 20, K: 50, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
		{N: 1, C: 40, H: 48, W: 64, K: 12, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 1, C: 30, H: 40, W: 44, K: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 2, C: 6, H: 12, W: 64, K: 9, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 1, C: 5, H: 9, W: 37, K: 7, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		// Batches whose images have a multiple of 16 output pixels run as one GEMM.
		{N: 2, C: 16, H: 8, W: 8, K: 24, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 3, C: 8, H: 4, W: 4, K: 20, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 3, C: 40, H: 16, W: 8, K: 70, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
		{N: 2, C: 24, H: 8, W: 4, K: 13, KH: 1, KW: 1, StrideH: 1, StrideW: 1},
	}
}

func convString(p ConvParams) string {
	return fmt.Sprintf("%dx%dx%dx%d→%d k%dx%d s%dx%d p%dx%d", p.N, p.C, p.H, p.W, p.K, p.KH, p.KW, p.StrideH, p.StrideW, p.PadH, p.PadW)
}

func convRelErr(got []float32, ref []float64) float64 {
	var maxErr, maxRef float64
	for i, r := range ref {
		maxErr = math.Max(maxErr, math.Abs(float64(got[i])-r))
		maxRef = math.Max(maxRef, math.Abs(r))
	}
	return maxErr / math.Max(1, maxRef)
}

func TestConv2D(t *testing.T) {
	saved := useAVX2
	defer func() { useAVX2 = saved }()
	r := rand.New(rand.NewSource(7))
	worst := map[string]float64{}
	for ci, p := range convCases() {
		oh, ow := p.OutSize()
		x := sgemmRandSlice(r, p.N*p.C*p.H*p.W)
		w := sgemmRandSlice(r, p.K*p.C*p.KH*p.KW)
		var bias []float32
		if ci%2 == 0 {
			bias = sgemmRandSlice(r, p.K)
		}
		ref := convRef(p, x, w, bias)
		twin := make([]float32, p.N*p.K*oh*ow)
		conv2DGeneric(p, x, w, bias, twin)
		eTwin := convRelErr(twin, ref)
		worst["generic"] = math.Max(worst["generic"], eTwin)
		if !(eTwin <= 1e-5) {
			t.Errorf("conv2DGeneric %s bias=%v: relative error %.3g", convString(p), bias != nil, eTwin)
		}
		for _, asm := range []bool{true, false} {
			if asm && !saved {
				continue
			}
			useAVX2 = asm
			y := make([]float32, len(twin))
			for i := range y {
				y[i] = float32(math.NaN()) // old contents must be ignored
			}
			procs := 1 + ci%3 // static, shared-operand and more workers than cores
			old := runtime.GOMAXPROCS(procs)
			Conv2D(p, x, w, bias, y)
			runtime.GOMAXPROCS(old)
			e := convRelErr(y, ref)
			var d, mx float64 // against the plain-Go twin
			for i := range y {
				d = math.Max(d, math.Abs(float64(y[i]-twin[i])))
				mx = math.Max(mx, math.Abs(float64(twin[i])))
			}
			d /= math.Max(1, mx)
			label := fmt.Sprintf("asm=%v", asm)
			worst[label] = math.Max(worst[label], e)
			worst[label+" vs twin"] = math.Max(worst[label+" vs twin"], d)
			if !(e <= 1e-5) || !(d <= 1e-5) {
				t.Errorf("Conv2D asm=%v %s bias=%v: relative error %.3g vs float64, %.3g vs conv2DGeneric", asm, convString(p), bias != nil, e, d)
			}
		}
	}
	logWorst(t, "Conv2D vs float64", "largest relative", worst, 1e-5)
}

// BenchmarkConv2D runs the UNet's and VAE's typical 3×3 convolutions (N×C×H×W, C→C, pad 1).
func BenchmarkConv2D(b *testing.B) {
	for _, s := range [][4]int{{2, 320, 64, 64}, {2, 640, 32, 32}, {2, 1280, 8, 8}, {1, 128, 256, 256}, {1, 64, 512, 512}, {1, 64, 128, 128}} {
		p := ConvParams{N: s[0], C: s[1], H: s[2], W: s[3], K: s[1], KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
		b.Run(fmt.Sprintf("%dx%dx%dx%d_3x3", s[0], s[1], s[2], s[3]), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			oh, ow := p.OutSize()
			x, w, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9), sgemmRandSlice(r, p.K)
			y := make([]float32, p.N*p.K*oh*ow)
			Conv2D(p, x, w, bias, y)
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				Conv2D(p, x, w, bias, y)
			}
			flops := 2 * float64(p.N*p.K*oh*ow) * float64(p.C*p.KH*p.KW)
			sgemmReport(b, flops, cpu0)
		})
	}
}

// TestConvOutPlane checks that the kernels honouring ConvParams.OutPlane write exactly what they
// write without it, each output plane at its stride, and leave the gaps between planes alone.
func TestConvOutPlane(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	for _, p := range []ConvParams{
		{N: 1, C: 24, H: 10, W: 70, K: 20, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 0, PadW: 1}, // a band: Winograd rows
		{N: 2, C: 16, H: 8, W: 8, K: 30, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},   // batched im2col GEMM
		{N: 1, C: 9, H: 6, W: 11, K: 13, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 0, PadW: 1},
		{N: 2, C: 64, H: 10, W: 40, K: 32, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 0, PadW: 1}, // the direct AMX convolution
	} {
		oh, ow := p.OutSize()
		x, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K)
		wh, wf := sgemmRandHalf(r, p.K*p.C*9)
		for _, k := range []struct {
			name string
			run  func(p ConvParams, y []float32)
		}{
			{"Conv2D", func(p ConvParams, y []float32) { Conv2D(p, x, wf, bias, y) }},
			{"Conv2DF16", func(p ConvParams, y []float32) { Conv2DF16(p, x, wh, bias, y) }},
			{"Conv2DWinogradW", func(p ConvParams, y []float32) { Conv2DWinogradW(p, x, wf, bias, y) }},
			{"Conv2DWinogradF16", func(p ConvParams, y []float32) { Conv2DWinogradF16(p, x, wh, bias, y) }},
			{"Conv2DBF16", func(p ConvParams, y []float32) { Conv2DBF16(p, x, wh, bias, y) }},
		} {
			if k.name == "Conv2DBF16" && !ConvBF16OutPlane(p) {
				continue // OutPlane only where the direct AMX convolution runs (TestConvBF16OutPlane)
			}
			want := make([]float32, p.N*p.K*oh*ow)
			k.run(p, want)
			sp := p
			sp.OutPlane = oh*ow + 37
			got := make([]float32, p.N*p.K*sp.OutPlane)
			const gap = -12345
			for i := range got {
				got[i] = gap
			}
			k.run(sp, got)
			bad := 0
			for i, v := range got {
				plane, off := i/sp.OutPlane, i%sp.OutPlane
				w := float32(gap)
				if off < oh*ow {
					w = want[plane*oh*ow+off]
				}
				if v != w {
					bad++
				}
			}
			if bad > 0 {
				t.Errorf("%s %s with OutPlane %d: %d values differ from the contiguous result (or gaps written)", k.name, convString(p), sp.OutPlane, bad)
			}
		}
	}
}

// TestConvBF16OutPlane says whether TestConvOutPlane ran the direct AMX convolution with
// OutPlane, and checks that the bf16 kernels refuse OutPlane where they cannot honour it.
func TestConvBF16OutPlane(t *testing.T) {
	p := ConvParams{N: 2, C: 64, H: 10, W: 40, K: 32, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 0, PadW: 1}
	if !ConvBF16OutPlane(p) {
		t.Skip("no direct AMX convolution on this CPU: Conv2DBF16 with OutPlane is not run")
	}
	q := p
	q.K = 20 // not a whole 32-row block: not the direct convolution
	if ConvBF16OutPlane(q) {
		t.Fatalf("%+v: ConvBF16OutPlane true", q)
	}
	q.OutPlane = 500
	defer func() {
		if recover() == nil {
			t.Errorf("Conv2DBF16 with OutPlane on a path that ignores it did not panic")
		}
	}()
	Conv2DBF16(q, make([]float32, q.N*q.C*q.H*q.W), make([]uint16, q.K*q.C*9), nil, make([]float32, q.N*q.K*q.OutPlane))
}
