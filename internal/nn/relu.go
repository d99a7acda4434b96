package nn

import (
	"fmt"

	"github.com/smallsd/smallsd/internal/kernels"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
)

// The operations TAESD (AutoencoderTiny) adds to the SD set: ReLU, a residual add fused with
// its ReLU, the tanh soft clamp and the affine maps between [-1, 1] and [0, 1].

type reluK struct{}

func (reluK) inPlaceArgs() []int { return []int{0} }

func (reluK) run(dst []float32, src [][]float32) error {
	kernels.ReLU(dst, src[0])
	return nil
}

// ReLU returns max(x, 0) element-wise.
func ReLU(x *gorgonia.Node) (*gorgonia.Node, error) { return apply("relu", reluK{}, x.Shape(), x) }

type addReLUK struct{}

func (addReLUK) inPlaceArgs() []int { return []int{0, 1} }

func (addReLUK) run(dst []float32, src [][]float32) error {
	kernels.AddReLU(dst, src[0], src[1])
	return nil
}

// AddReLU returns max(a + b, 0) element-wise (a residual sum and its ReLU); a and b have the
// same shape.
func AddReLU(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	if !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("nn: add_relu: shapes %v and %v differ", a.Shape(), b.Shape())
	}
	return apply("add_relu", addReLUK{}, a.Shape(), a, b)
}

type softClampK struct{ M float32 }

func (softClampK) inPlaceArgs() []int { return []int{0} }

func (k softClampK) run(dst []float32, src [][]float32) error {
	kernels.SoftClamp(dst, src[0], k.M)
	return nil
}

// SoftClamp returns tanh(x/m)·m element-wise: x squashed into (−m, m).
func SoftClamp(x *gorgonia.Node, m float32) (*gorgonia.Node, error) {
	if !(m > 0) {
		return nil, fmt.Errorf("nn: soft_clamp: magnitude %v, want > 0", m)
	}
	return apply("soft_clamp", softClampK{m}, x.Shape(), x)
}

type addScaleK struct{ A, B float32 }

func (addScaleK) inPlaceArgs() []int { return []int{0} }

func (k addScaleK) run(dst []float32, src [][]float32) error {
	kernels.AddScale(dst, src[0], k.A, k.B)
	return nil
}

// AddScale returns (x + a)·b element-wise: (x + 1)·0.5 maps [-1, 1] to [0, 1], (x − 0.5)·2 maps
// it back (rounded exactly as 2x − 1).
func AddScale(x *gorgonia.Node, a, b float32) (*gorgonia.Node, error) {
	return apply("add_scale", addScaleK{a, b}, x.Shape(), x)
}

// NewConv2dNoBias is NewConv2d for a convolution without bias (only "weight" is read).
func NewConv2dNoBias(w weights.View, in, out, kernel, stride, padding int) (*Conv2d, error) {
	c := &Conv2d{In: in, Out: out, Kernel: kernel, Stride: stride, Pad: padding}
	var err error
	if c.Weight, err = loadWeight(w, "weight", out, in, kernel, kernel); err != nil {
		return nil, err
	}
	c.Weight = packBF16Stride(c.Weight, stride)
	return c, nil
}
