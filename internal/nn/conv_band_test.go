package nn

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestConvBandedBitIdentical checks that the banded convolutions (in place and through the ×2
// upsampling) give exactly the values of the plain ones, with bands of 4 and 8 rows (the last
// one partial), float32, half and bf16 weights, the direct and the Winograd path, batch 1 and 2;
// and that a GroupNorm + SiLU fused into the gathering (ForwardBandedNormSiLU) gives the values
// of the two ops.
func TestConvBandedBitIdentical(t *testing.T) {
	defer func(b int) { bandBytes = b }(bandBytes)
	syn := weights.NewSynthetic().View()
	for _, wv := range []struct {
		name string
		w    weights.View
	}{{"fp32", syn}, {"fp16", syn.Half()}, {"bf16", syn.BF16()}} {
		for _, c := range []struct{ n, in, out, h, w, rows int }{
			{1, 8, 4, 13, 10, 4},     // direct, K < C, ragged last band
			{2, 8, 8, 16, 16, 4},     // direct, batch 2
			{2, 64, 64, 24, 20, 8},   // Winograd on narrow rows: falls back to the plain path
			{1, 64, 64, 64, 128, 16}, // Winograd, rows of 32 tiles (the VAE's are 32–128)
			{1, 128, 64, 64, 64, 8},  // Winograd, K < C, rows of 16 tiles
		} {
			for _, mode := range []string{"plain", "up", "norm"} {
				up, withNorm := mode == "up", mode == "norm"
				name := fmt.Sprintf("%s/%dx%d→%d_%dx%d_rows%d_%s", wv.name, c.n, c.in, c.out, c.h, c.w, c.rows, mode)
				t.Run(name, func(t *testing.T) {
					conv, err := NewConv2d(wv.w.Sub(fmt.Sprintf("band%d_%d", c.in, c.out)), c.in, c.out, 3, 1, 1)
					if err != nil {
						t.Fatal(err)
					}
					norm, err := NewGroupNorm(wv.w.Sub(fmt.Sprintf("bandnorm%d", c.in)), 4, c.in, 1e-6)
					if err != nil {
						t.Fatal(err)
					}
					ow := c.w
					if up {
						ow *= 2
					}
					bandBytes = c.rows * 4 * (c.in + 1) * ow
					run := func(banded bool) []float32 {
						g := gorgonia.NewGraph()
						x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(c.n, c.in, c.h, c.w), gorgonia.WithName("x"))
						h, err := Scale(x, 1.5) // a computed value, so the banded result may take its place
						if err != nil {
							t.Fatal(err)
						}
						var y *gorgonia.Node
						switch {
						case banded && withNorm:
							y, err = conv.ForwardBandedNormSiLU(h, norm)
						case withNorm:
							if y, err = norm.ForwardSiLU(h); err == nil {
								y, err = conv.Forward(y)
							}
						case banded && up:
							y, err = (&Upsample2D{Conv: conv}).ForwardBanded(h)
						case banded:
							y, err = conv.ForwardBanded(h)
						case up:
							y, err = (&Upsample2D{Conv: conv}).Forward(h)
						default:
							y, err = conv.Forward(h)
						}
						if err != nil {
							t.Fatal(err)
						}
						p, err := Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{y})
						if err != nil {
							t.Fatal(err)
						}
						_, isBand := y.Op().(*Op).k.(convBandK)
						if banded && c.w >= 64 && !isBand {
							t.Errorf("wide rows took the plain path")
						}
						if isBand && !up && c.out <= c.in && p.vals[p.outs[0]].slot != p.vals[p.steps[0].val].slot {
							t.Errorf("the banded convolution did not take its input's place")
						}
						xd := make([]float32, c.n*c.in*c.h*c.w)
						for i := range xd {
							xd[i] = float32(math.Sin(float64(i)*0.37)) + float32(i%7)/10
						}
						res, err := p.Run(context.Background(), tensor.New(tensor.WithShape(c.n, c.in, c.h, c.w), tensor.WithBacking(xd)))
						if err != nil {
							t.Fatal(err)
						}
						return append([]float32(nil), res[0].Float32s()...)
					}
					want, got := run(false), run(true)
					if len(want) != len(got) {
						t.Fatalf("%d values, want %d", len(got), len(want))
					}
					if withNorm && c.w%8 != 0 {
						// Rows of other widths end in the plain-Go tail of the normalisation
						// kernel, which may round differently from the vector kernel: close, not
						// bit for bit.
						var worst float64
						for i := range want {
							worst = math.Max(worst, math.Abs(float64(got[i]-want[i]))/(1+math.Abs(float64(want[i]))))
						}
						t.Logf("normalised while gathering, rows of %d: largest difference %.3g", c.w, worst)
						golden.Within(t, "banded GroupNorm+SiLU+conv vs the ops", "largest scaled difference", worst, 2e-6)
						return
					}
					for i := range want {
						if math.Float32bits(want[i]) != math.Float32bits(got[i]) {
							t.Fatalf("value %d is %v, want %v (bit for bit)", i, got[i], want[i])
						}
					}
				})
			}
		}
	}
}
