package kernels

import (
	"math"
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
)

func TestLinear(t *testing.T) {
	saved := useAVX2
	defer func() { useAVX2 = saved }()
	r := rand.New(rand.NewSource(3))
	var worst float64
	for _, s := range [][3]int{{1, 1, 1}, {2, 77, 768}, {5, 13, 17}, {77, 40, 320}, {130, 33, 65}} {
		rows, in, out := s[0], s[1], s[2]
		x := sgemmRandSlice(r, rows*in)
		w := sgemmRandSlice(r, out*in)
		for _, withBias := range []bool{false, true} {
			var bias []float32
			if withBias {
				bias = sgemmRandSlice(r, out)
			}
			ref := make([]float64, rows*out)
			for i := 0; i < rows; i++ {
				for o := 0; o < out; o++ {
					var acc float64
					if bias != nil {
						acc = float64(bias[o])
					}
					for p := 0; p < in; p++ {
						acc += float64(x[i*in+p]) * float64(w[o*in+p])
					}
					ref[i*out+o] = acc
				}
			}
			for _, asm := range []bool{true, false} {
				if asm && !saved {
					continue
				}
				useAVX2 = asm
				y := make([]float32, rows*out)
				for i := range y {
					y[i] = float32(math.NaN())
				}
				Linear(x, rows, in, w, out, bias, y)
				e := sgemmRelErr(y, out, ref, rows, out)
				worst = math.Max(worst, e)
				if !(e <= 3e-6) { // about 10× the largest measured, 3.0e-7
					t.Errorf("Linear %dx%d→%d bias=%v asm=%v: relative error %.3g", rows, in, out, withBias, asm, e)
				}
			}
		}
	}
	golden.Within(t, "Linear vs float64", "largest relative", worst, 3e-6)
}
