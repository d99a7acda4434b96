package nn

import (
	"fmt"

	"github.com/smallsd/smallsd/internal/kernels"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Layout operations: padding, resizing, concatenation, views and the NCHW ↔ token permutes.

type padK struct{ NC, H, W, Top, Bottom, Left, Right int }

func (k padK) run(dst []float32, src [][]float32) error {
	ow := k.W + k.Left + k.Right
	oh := k.H + k.Top + k.Bottom
	clear(dst)
	for p := 0; p < k.NC; p++ {
		for y := 0; y < k.H; y++ {
			o := (p*oh+y+k.Top)*ow + k.Left
			copy(dst[o:o+k.W], src[0][(p*k.H+y)*k.W:])
		}
	}
	return nil
}

// Pad2D zero-pads the last two axes of x (N×C×H×W) by the given amounts (F.pad with
// (left, right, top, bottom)); diffusers' Downsample2D with padding 0 pads right and bottom by 1.
func Pad2D(x *gorgonia.Node, top, bottom, left, right int) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) != 4 || min(top, bottom, left, right) < 0 {
		return nil, fmt.Errorf("nn: pad2d: input %v, padding %d %d %d %d", xs, top, bottom, left, right)
	}
	k := padK{NC: xs[0] * xs[1], H: xs[2], W: xs[3], Top: top, Bottom: bottom, Left: left, Right: right}
	return apply("pad2d", k, tensor.Shape{xs[0], xs[1], xs[2] + top + bottom, xs[3] + left + right}, x)
}

type upK struct{ NC, H, W int }

func (k upK) run(dst []float32, src [][]float32) error {
	kernels.UpsampleNearest2x(dst, src[0], k.NC, k.H, k.W)
	return nil
}

// Upsample2x returns x (N×C×H×W) upsampled to N×C×2H×2W by nearest neighbour
// (F.interpolate(scale_factor=2.0, mode="nearest")).
func Upsample2x(x *gorgonia.Node) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) != 4 {
		return nil, shapeErr("upsample_nearest2x", "input", xs, "N×C×H×W")
	}
	k := upK{NC: xs[0] * xs[1], H: xs[2], W: xs[3]}
	return apply("upsample_nearest2x", k, tensor.Shape{xs[0], xs[1], 2 * xs[2], 2 * xs[3]}, x)
}

type concatK struct {
	N, Inner int
	Cs       []int
}

func (k concatK) run(dst []float32, src [][]float32) error {
	if len(src) == 2 {
		kernels.ConcatChannels(dst, src[0], src[1], k.N, k.Cs[0], k.Cs[1], k.Inner)
		return nil
	}
	o := 0
	for n := 0; n < k.N; n++ {
		for i, s := range src {
			m := k.Cs[i] * k.Inner
			o += copy(dst[o:o+m], s[n*m:(n+1)*m])
		}
	}
	return nil
}

// Concat returns torch.cat(xs, dim=1): the nodes agree on every axis but the second.
func Concat(xs ...*gorgonia.Node) (*gorgonia.Node, error) {
	if len(xs) == 0 {
		return nil, fmt.Errorf("nn: concat: no inputs")
	}
	first := xs[0].Shape()
	if len(first) < 2 {
		return nil, shapeErr("concat", "input 0", first, "N×C×…")
	}
	k := concatK{N: first[0], Inner: shapeSize(first[2:])}
	out := append(tensor.Shape{}, first...)
	out[1] = 0
	for i, x := range xs {
		s := x.Shape()
		if len(s) != len(first) || s[0] != first[0] || !s[2:].Eq(first[2:]) {
			return nil, fmt.Errorf("nn: concat: input %d has shape %v, incompatible with input 0's %v", i, s, first)
		}
		k.Cs = append(k.Cs, s[1])
		out[1] += s[1]
	}
	return apply("concat", k, out, xs...)
}

type viewK struct{ Off int }

func (k viewK) run(dst []float32, src [][]float32) error {
	copy(dst, src[0][k.Off:])
	return nil
}

func (k viewK) offset() int { return k.Off }

// Reshape returns x under another shape with the same number of elements, sharing its data.
func Reshape(x *gorgonia.Node, shape ...int) (*gorgonia.Node, error) {
	if shapeSize(shape) != shapeSize(x.Shape()) {
		return nil, fmt.Errorf("nn: reshape: %v to %v changes the element count", x.Shape(), shape)
	}
	return apply("reshape", viewK{}, tensor.Shape(shape).Clone(), x)
}

// SliceBatch returns samples from…to−1 of x along its first axis, sharing its data (the two
// halves of a classifier-free-guidance batch, say).
func SliceBatch(x *gorgonia.Node, from, to int) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) < 1 || from < 0 || to > xs[0] || from >= to {
		return nil, fmt.Errorf("nn: slice: [%d:%d] of shape %v", from, to, xs)
	}
	out := append(tensor.Shape{}, xs...)
	out[0] = to - from
	inner := shapeSize(xs[1:])
	return apply("slice_batch", viewK{Off: from * inner}, out, x)
}

type transposeK struct{ Batch, Rows, Cols int }

func (k transposeK) run(dst []float32, src [][]float32) error {
	kernels.Transpose(dst, src[0], k.Batch, k.Rows, k.Cols)
	return nil
}

// ToTokens returns x (N×C×H×W) as N×(H·W)×C: x.permute(0, 2, 3, 1).reshape(N, H·W, C).
func ToTokens(x *gorgonia.Node) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) != 4 {
		return nil, shapeErr("to_tokens", "input", xs, "N×C×H×W")
	}
	k := transposeK{Batch: xs[0], Rows: xs[1], Cols: xs[2] * xs[3]}
	return apply("to_tokens", k, tensor.Shape{xs[0], xs[2] * xs[3], xs[1]}, x)
}

// FromTokens returns x (N×(H·W)×C) as N×C×H×W, the inverse of ToTokens.
func FromTokens(x *gorgonia.Node, h, w int) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) != 3 || xs[1] != h*w {
		return nil, shapeErr("from_tokens", "input", xs, fmt.Sprintf("N×%d×C", h*w))
	}
	k := transposeK{Batch: xs[0], Rows: h * w, Cols: xs[2]}
	return apply("from_tokens", k, tensor.Shape{xs[0], xs[2], h, w}, x)
}

type resizeK struct{ NC, H, W, OH, OW int }

// nearestIndex is torch's nearest_idx for upsample_nearest2d: float32 scale in/out, floored.
func nearestIndex(o, in, out int) int {
	switch {
	case in == out:
		return o
	case out == 2*in:
		return o >> 1
	}
	scale := float32(in) / float32(out)
	return min(int(float32(o)*scale), in-1)
}

func (k resizeK) run(dst []float32, src [][]float32) error {
	if k.OH == 2*k.H && k.OW == 2*k.W {
		kernels.UpsampleNearest2x(dst, src[0], k.NC, k.H, k.W)
		return nil
	}
	for p := 0; p < k.NC; p++ {
		for oy := 0; oy < k.OH; oy++ {
			srow := src[0][(p*k.H+nearestIndex(oy, k.H, k.OH))*k.W:]
			drow := dst[(p*k.OH+oy)*k.OW : (p*k.OH+oy+1)*k.OW]
			for ox := range drow {
				drow[ox] = srow[nearestIndex(ox, k.W, k.OW)]
			}
		}
	}
	return nil
}

// ResizeNearest returns x (N×C×H×W) resized to N×C×h×w by nearest neighbour as
// F.interpolate(size=(h, w), mode="nearest") computes it (the UNet's upsample_size path when the
// latent size is not a multiple of 2^levels).
func ResizeNearest(x *gorgonia.Node, h, w int) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) != 4 || h < 1 || w < 1 {
		return nil, fmt.Errorf("nn: resize_nearest: input %v to %d×%d", xs, h, w)
	}
	k := resizeK{NC: xs[0] * xs[1], H: xs[2], W: xs[3], OH: h, OW: w}
	return apply("resize_nearest", k, tensor.Shape{xs[0], xs[1], h, w}, x)
}
