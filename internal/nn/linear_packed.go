package nn

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/smallsd/smallsd/internal/kernels"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Packed weights: NewLinear packs a float32 or IEEE half weight matrix once, at load, into the
// panels the GEMM micro-kernels read (kernels.PackedWeight), and drops the row-major matrix, so
// the packed copy replaces it in memory. Every forward then reads the panels in place (float32)
// or widens them with one contiguous conversion (half) instead of transposing and packing the
// matrix again. The arithmetic is exactly that of the row-major path. bf16 weights keep their own
// packing (bf16.go's kernels).

// packLinear replaces p's float32 or half matrix (out×in) by its packed panels.
func packLinear(p Param, out, in int) Param {
	switch {
	case p.T != nil:
		p.Packed = kernels.PackWeight(p.T.Float32s()[:out*in], out, in)
		p.T = nil
	case p.Half != nil && !p.Half.BF16:
		p.Packed = kernels.PackWeightF16(p.Half.Bits, out, in)
		p.Half = nil
	default:
		return p
	}
	dropped(p.Packed.Bytes())
	return p
}

// packDropped counts the bytes of row-major matrices dropped after packing since the last
// collection it asked for. Loading a model allocates its weights one after another with little
// other garbage, so the collector's pacer would let the dropped matrices pile up (up to the live
// heap's size again) before reclaiming them; every packGCBytes of them, a collection returns them
// for the next layers' weights, so that packing raises the peak memory of a load by at most that.
var packDropped atomic.Int64

const packGCBytes = 16 << 20

func dropped(n int64) {
	if packDropped.Add(n) >= packGCBytes {
		packDropped.Store(0)
		runtime.GC()
	}
}

// Dense returns the parameter's values as a float32 tensor: T itself, or a new tensor with the
// widened half bits or the unpacked panels (for tests and inspection).
func (p Param) Dense() *tensor.Dense {
	switch {
	case p.T != nil:
		return p.T
	case p.Packed != nil:
		return tensor.New(tensor.WithShape(p.Packed.Out, p.Packed.In), tensor.WithBacking(p.Packed.Unpack()))
	case p.Half != nil:
		bits := p.Half.bits()
		d := make([]float32, len(bits))
		if p.Half.BF16 {
			kernels.BF16ToF32(d, bits)
		} else {
			kernels.F16ToF32(d, bits)
		}
		return tensor.New(tensor.WithShape(p.Half.Shape.Clone()...), tensor.WithBacking(d))
	}
	return nil
}

type linearPackedK struct {
	Rows int
	Bias bool
	W    *kernels.PackedWeight
}

func (k linearPackedK) run(dst []float32, src [][]float32) error {
	var b []float32
	if k.Bias {
		b = src[1]
	}
	kernels.LinearPacked(src[0], k.Rows, k.W, b, dst)
	return nil
}

// AffinePacked is Affine with the weight w packed at load: x·wᵀ + b.
func AffinePacked(x *gorgonia.Node, w *kernels.PackedWeight, b *gorgonia.Node) (*gorgonia.Node, error) {
	xs := x.Shape()
	if w == nil {
		return nil, fmt.Errorf("nn: linear: no packed weight")
	}
	if len(xs) < 1 || xs[len(xs)-1] != w.In {
		return nil, fmt.Errorf("nn: linear: input %v and packed weight %v do not match (want …×%d)", xs, w, w.In)
	}
	k := linearPackedK{Rows: shapeSize(xs[:len(xs)-1]), Bias: b != nil, W: w}
	out := append(tensor.Shape{}, xs...)
	out[len(out)-1] = w.Out
	if b == nil {
		return apply("linear_packed", k, out, x)
	}
	if !b.Shape().Eq(tensor.Shape{w.Out}) {
		return nil, shapeErr("linear", "bias", b.Shape(), []int{w.Out})
	}
	return apply("linear_packed", k, out, x, b)
}

// packed returns the layer's packed weight, packing it again from the weights it was built from
// when ReleasePacked dropped it; nil for a layer whose weight is not packed.
func (l *Linear) packed() (*kernels.PackedWeight, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Weight.Packed != nil || !l.released {
		return l.Weight.Packed, nil
	}
	p, err := loadLinearWeight(l.srcs, l.Out/len(l.srcs), l.In)
	if err != nil {
		return nil, fmt.Errorf("nn: packing %s again: %w", l.Weight.Name, err)
	}
	l.Weight.Packed = p.Packed
	l.released = false
	return l.Weight.Packed, nil
}

// ReleasePacked drops the packed copy of the weights of the layers that NewLinear packed, for
// models idle for a while (the pipeline's text encoder during denoising): the next Forward
// packs them again from the weights they were built from (for a model made by Load, its
// memory-mapped file, which must still be open). It returns the bytes dropped; they leave
// memory with the next garbage collection once no compiled program refers to them (programs
// compiled before keep theirs alive). Safe for concurrent use with Forward.
func ReleasePacked(ls ...*Linear) int64 {
	var n int64
	for _, l := range ls {
		l.mu.Lock()
		if l.Weight.Packed != nil {
			n += l.Weight.Packed.Bytes()
			l.Weight.Packed, l.released = nil, true
		}
		l.mu.Unlock()
	}
	return n
}
