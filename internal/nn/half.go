package nn

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/smallsd/smallsd/internal/kernels"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Half weights: when the weights.View a Linear or Conv2d is built from prefers half
// (weights.WithHalf, weights.View.Half), the layer keeps its weight matrix as IEEE half bits
// (Param.Half) instead of a float32 graph input. The matrix then lives in the op, not in the
// graph, and the kernels widen it to float32 while packing (kernels.LinearF16, Conv2DF16), so
// the arithmetic is float32 on the rounded weights. Biases stay float32 graph inputs.
//
// bf16 weights are the same idea with bfloat16 bits (weights.WithBF16, View.BF16; HalfWeight.BF16
// set): the kernels (kernels.LinearBF16, Conv2DBF16) then also round the layer's input to bf16
// and multiply with the CPU's bf16 dot products (AVX512-BF16) where it has them and they beat its
// float32 FMAs (kernels.BF16Status), accumulating in float32; elsewhere they widen the weights as
// for fp16.

// HalfWeight is a weight tensor held as 16-bit floats, row-major, outside the graph: IEEE 754
// binary16 bits, or bfloat16 bits when BF16 is set.
type HalfWeight struct {
	Name  string
	Bits  []uint16
	Shape tensor.Shape
	BF16  bool

	// Pairs, when set, holds a bf16 weight prepared at load for the CPU's bf16 path (packBF16 in
	// bf16.go: the bf16 kernels' pair panels, or the float32 kernels' panels of bf16 bits, or
	// for a convolution off the pair path its bits), in place of Bits, which is then nil.
	Pairs *kernels.BF16Weight
}

// bits returns the weight's row-major bits: Bits, or the pair panels unpacked (a new slice).
func (h *HalfWeight) bits() []uint16 {
	if h.Pairs != nil {
		return h.Pairs.Bits()
	}
	return h.Bits
}

// size returns the number of values the weight holds.
func (h *HalfWeight) size() int {
	if h.Pairs != nil {
		return h.Pairs.Rows * h.Pairs.Cols
	}
	return len(h.Bits)
}

// String names the weight with its shape and the address of its data: ops holding different
// weights never hash alike, so gorgonia never merges their nodes.
func (h *HalfWeight) String() string {
	var p unsafe.Pointer
	switch {
	case h.Pairs != nil:
		p = unsafe.Pointer(h.Pairs)
	case len(h.Bits) > 0:
		p = unsafe.Pointer(&h.Bits[0])
	}
	kind := ""
	if h.BF16 {
		kind = "bf16:"
	}
	return fmt.Sprintf("%s%s%v@%p", kind, h.Name, h.Shape, p)
}

// widen writes the float32 values of the 16-bit floats src into dst.
func (h *HalfWeight) widen(dst []float32, src []uint16) {
	if h.BF16 {
		for i, b := range src {
			dst[i] = math.Float32frombits(uint32(b) << 16)
		}
		return
	}
	for i, b := range src {
		dst[i] = weights.HalfToFloat32(b)
	}
}

// Float32s returns the weight's values widened to float32 (a new slice).
func (h *HalfWeight) Float32s() []float32 {
	bits := h.bits()
	out := make([]float32, len(bits))
	h.widen(out, bits)
	return out
}

// loadWeight reads a layer's weight matrix: as bf16 bits when w prefers bf16, as half bits when
// it prefers half, else as loadParam.
func loadWeight(w weights.View, name string, shape ...int) (Param, error) {
	bf16 := w.PreferBF16()
	if !bf16 && !w.PreferHalf() {
		return loadParam(w, name, shape...)
	}
	fetch := w.TensorHalf
	if bf16 {
		fetch = w.TensorBF16
	}
	bits, err := fetch(name, shape...)
	if err != nil {
		return Param{}, err
	}
	full := fullName(w, name)
	return Param{Name: full, Half: &HalfWeight{Name: full, Bits: bits, Shape: tensor.Shape(shape).Clone(), BF16: bf16}}, nil
}

type linearHalfK struct {
	Rows, In, Out int
	Bias          bool
	W             *HalfWeight
}

func (k linearHalfK) run(dst []float32, src [][]float32) error {
	var b []float32
	if k.Bias {
		b = src[1]
	}
	if k.W.Pairs != nil {
		kernels.LinearBF16Packed(src[0], k.Rows, k.W.Pairs, b, dst)
		return nil
	}
	if k.W.BF16 {
		kernels.LinearBF16(src[0], k.Rows, k.In, k.W.Bits, k.Out, b, dst)
		return nil
	}
	kernels.LinearF16(src[0], k.Rows, k.In, k.W.Bits, k.Out, b, dst)
	return nil
}

// AffineHalf is Affine with the weight w (out×in) held as half bits: x·wᵀ + b.
func AffineHalf(x *gorgonia.Node, w *HalfWeight, b *gorgonia.Node) (*gorgonia.Node, error) {
	xs := x.Shape()
	if w == nil || len(w.Shape) != 2 || w.size() != shapeSize(w.Shape) {
		return nil, fmt.Errorf("nn: linear: half weight %v is not an out×in matrix", w)
	}
	if len(xs) < 1 || xs[len(xs)-1] != w.Shape[1] {
		return nil, fmt.Errorf("nn: linear: input %v and weight %v do not match (want …×in and out×in)", xs, w.Shape)
	}
	k := linearHalfK{Rows: shapeSize(xs[:len(xs)-1]), In: w.Shape[1], Out: w.Shape[0], Bias: b != nil, W: w}
	out := append(tensor.Shape{}, xs...)
	out[len(out)-1] = k.Out
	if b == nil {
		return apply("linear_f16", k, out, x)
	}
	if !b.Shape().Eq(tensor.Shape{k.Out}) {
		return nil, shapeErr("linear", "bias", b.Shape(), []int{k.Out})
	}
	return apply("linear_f16", k, out, x, b)
}

type convHalfK struct {
	P    kernels.ConvParams
	Bias bool
	Wino bool // Winograd F(4×4, 3×3) (conv_winograd.go)
	W    *HalfWeight
}

func (k convHalfK) run(dst []float32, src [][]float32) error {
	var b []float32
	if k.Bias {
		b = src[1]
	}
	if k.W.Pairs != nil {
		if !k.Wino && k.W.Pairs.PackNow() { // a convolution's first GEMM packs its bits (bf16.go)
			dropped(k.W.Pairs.Bytes())
		}
		if k.Wino {
			kernels.Conv2DWinogradBF16Packed(k.P, src[0], k.W.Pairs, b, dst)
		} else {
			kernels.Conv2DBF16Packed(k.P, src[0], k.W.Pairs, b, dst)
		}
		return nil
	}
	if k.Wino && k.W.BF16 {
		kernels.Conv2DWinogradBF16(k.P, src[0], k.W.Bits, b, dst)
		return nil
	}
	if k.Wino {
		kernels.Conv2DWinogradF16(k.P, src[0], k.W.Bits, b, dst)
		return nil
	}
	if k.W.BF16 {
		kernels.Conv2DBF16(k.P, src[0], k.W.Bits, b, dst)
		return nil
	}
	kernels.Conv2DF16(k.P, src[0], k.W.Bits, b, dst)
	return nil
}

// ConvHalf is Conv with the weight w (K×C×KH×KW) held as half bits.
func ConvHalf(x *gorgonia.Node, w *HalfWeight, b *gorgonia.Node, stride, padding int) (*gorgonia.Node, error) {
	xs := x.Shape()
	if w == nil || len(w.Shape) != 4 || w.size() != shapeSize(w.Shape) {
		return nil, fmt.Errorf("nn: conv2d: half weight %v is not a K×C×KH×KW tensor", w)
	}
	ws := w.Shape
	if len(xs) != 4 || xs[1] != ws[1] {
		return nil, fmt.Errorf("nn: conv2d: input %v and weight %v do not match (want N×C×H×W and K×C×KH×KW)", xs, ws)
	}
	if stride < 1 || padding < 0 {
		return nil, fmt.Errorf("nn: conv2d: stride %d, padding %d", stride, padding)
	}
	p := kernels.ConvParams{N: xs[0], C: xs[1], H: xs[2], W: xs[3], K: ws[0], KH: ws[2], KW: ws[3],
		StrideH: stride, StrideW: stride, PadH: padding, PadW: padding}
	oh, ow := p.OutSize()
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("nn: conv2d: input %v too small for kernel %v with padding %d", xs, ws, padding)
	}
	k := convHalfK{P: p, Bias: b != nil, Wino: convWinograd(p, w), W: w}
	out := tensor.Shape{p.N, p.K, oh, ow}
	if b == nil {
		return apply("conv2d_f16", k, out, x)
	}
	if !b.Shape().Eq(tensor.Shape{p.K}) {
		return nil, shapeErr("conv2d", "bias", b.Shape(), []int{p.K})
	}
	return apply("conv2d_f16", k, out, x, b)
}

// Bytes returns the memory the parameter's values take: 4 per float32 value, 2 per half.
func (p Param) Bytes() int64 {
	switch {
	case p.Packed != nil:
		return p.Packed.Bytes()
	case p.Half != nil:
		if p.Half.Pairs != nil {
			return p.Half.Pairs.Bytes()
		}
		return 2 * int64(len(p.Half.Bits))
	case p.T != nil:
		return 4 * int64(p.T.Size())
	}
	return 0
}
