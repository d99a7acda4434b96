package kernels

import (
	"math"
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

// sgemmRandHalf returns n random IEEE half values of moderate magnitude (including a few zeros and
// subnormals) and their float32 widening.
func sgemmRandHalf(r *rand.Rand, n int) ([]uint16, []float32) {
	h, f := make([]uint16, n), make([]float32, n)
	for i := range h {
		exp := uint16(10 + r.Intn(8)) // 2^-5 … 2^2
		switch r.Intn(50) {
		case 0:
			exp = 0 // subnormal or zero
		}
		h[i] = uint16(r.Intn(2))<<15 | exp<<10 | uint16(r.Intn(1024))
	}
	F16ToF32(f, h)
	return h, f
}

// TestF16Weights checks that LinearF16 gives exactly Linear on the widened weights (widening is
// exact, the arithmetic identical) and Conv2DF16 the float64 convolution, on both paths.
func TestF16Weights(t *testing.T) {
	saved := useAVX2
	defer func() { useAVX2 = saved }()
	r := rand.New(rand.NewSource(11))
	var worst float64
	for _, asm := range []bool{true, false} {
		if asm && !saved {
			continue
		}
		useAVX2 = asm
		for _, s := range [][3]int{{1, 1, 1}, {7, 33, 70}, {77, 320, 96}, {200, 300, 40}} {
			rows, in, out := s[0], s[1], s[2]
			x := sgemmRandSlice(r, rows*in)
			wh, wf := sgemmRandHalf(r, out*in)
			bias := sgemmRandSlice(r, out)
			want, got := make([]float32, rows*out), make([]float32, rows*out)
			Linear(x, rows, in, wf, out, bias, want)
			LinearF16(x, rows, in, wh, out, bias, got)
			if d := sgemmMaxDiff(got, want); d != 0 {
				t.Errorf("asm=%v LinearF16 %dx%d→%d: differs from Linear on widened weights by %g", asm, rows, in, out, d)
			}
		}
		for _, p := range convCases() {
			oh, ow := p.OutSize()
			x := sgemmRandSlice(r, p.N*p.C*p.H*p.W)
			wh, wf := sgemmRandHalf(r, p.K*p.C*p.KH*p.KW)
			bias := sgemmRandSlice(r, p.K)
			want, got := make([]float32, p.N*p.K*oh*ow), make([]float32, p.N*p.K*oh*ow)
			Conv2D(p, x, wf, bias, want)
			Conv2DF16(p, x, wh, bias, got)
			// Not bit-exact: Conv2D may read fp32 weights in place with another k blocking.
			ref := convRef(p, x, wf, bias)
			e, d := convRelErr(got, ref), sgemmMaxDiff(got, want)
			worst = math.Max(worst, e)
			if !(e <= 1e-5) {
				t.Errorf("asm=%v Conv2DF16 %s: relative error %.3g vs float64 (max diff %.3g vs Conv2D)", asm, convString(p), e, d)
			}
		}
	}
	t.Log("LinearF16 matches Linear on the widened weights exactly")
	golden.Within(t, "Conv2DF16 vs float64", "largest relative", worst, 1e-5)
}

func sgemmMaxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
	}
	return d
}
