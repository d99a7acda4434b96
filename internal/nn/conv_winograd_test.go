package nn

import (
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/internal/kernels"
	"gorgonia.org/gorgonia"
)

// TestConvWinograd checks that Conv picks Winograd for a convolution of the kind it pays on and
// that the result matches the float64 direct convolution.
func TestConvWinograd(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	x, w, b := randDense(r, 2, 64, 64, 64), randDense(r, 64, 64, 3, 3), randDense(r, 64)
	p := kernels.ConvParams{N: 2, C: 64, H: 64, W: 64, K: 64, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	if !useWinograd(p) {
		t.Fatalf("useWinograd(%+v) is false", p)
	}
	if q := p; useWinograd(func() kernels.ConvParams { q.StrideH, q.StrideW = 2, 2; return q }()) {
		t.Errorf("useWinograd is true for a stride-2 convolution")
	}
	got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Conv(in[0], in[1], in[2], 1, 1) }, x, w, b)
	checkClose(t, "conv2d winograd", got, refConv(arrOf(x), arrOf(w), arrOf(b), 1, 1), 2e-5)
}
