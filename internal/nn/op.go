package nn

import (
	"fmt"
	"hash"
	"hash/fnv"
	"math"

	"github.com/chewxy/hm"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// kernel is one operation's parameters plus its computation. Every field of a kernel is a
// parameter: the Op hashes the kernel with fmt's %+v, so two nodes with the same inputs merge
// (gorgonia hash-conses identical nodes) only when every parameter agrees.
type kernel interface {
	// run writes the result into dst (exactly the output size) from the inputs. Shapes were
	// validated when the node was built; run must not write into any src. Errors are for
	// data-dependent failures only (a token id out of range).
	run(dst []float32, src [][]float32) error
}

// viewKernel marks kernels whose output is a contiguous part of the input's data, starting at
// element offset(), seen under the output shape: the executor aliases instead of copying.
type viewKernel interface {
	kernel
	offset() int
}

// inPlacer marks kernels whose result may overwrite one of the inputs listed (index-aligned
// element-wise reads and writes, or a kernel documented to allow dst aliasing src).
type inPlacer interface {
	inPlaceArgs() []int
}

// Op is the gorgonia.Op behind every operation of this package. Its Do and UsePreallocDo call
// internal/kernels; it never writes into its inputs.
type Op struct {
	name     string
	k        kernel
	inShapes []tensor.Shape
	out      tensor.Shape
}

var (
	_ gorgonia.Op              = (*Op)(nil)
	_ gorgonia.UsePreallocDoer = (*Op)(nil)
)

// apply adds a node computing k from inputs, with output shape out.
func apply(name string, k kernel, out tensor.Shape, inputs ...*gorgonia.Node) (*gorgonia.Node, error) {
	op := &Op{name: name, k: k, out: out.Clone()}
	for i, in := range inputs {
		if in == nil {
			return nil, fmt.Errorf("nn: %s: input %d is nil", name, i)
		}
		if in.Dtype() != tensor.Float32 {
			return nil, fmt.Errorf("nn: %s: input %d (%s) is %v, want float32", name, i, in.Name(), in.Dtype())
		}
		if shapeSize(in.Shape()) < 0 {
			return nil, fmt.Errorf("nn: %s: input %d (%s) of shape %v is too large", name, i, in.Name(), in.Shape())
		}
		op.inShapes = append(op.inShapes, in.Shape())
	}
	if shapeSize(out) < 0 {
		return nil, fmt.Errorf("nn: %s: the result's shape %v is too large", name, out)
	}
	n, err := gorgonia.ApplyOp(op, inputs...)
	if err != nil {
		return nil, fmt.Errorf("nn: %s: %w", name, err)
	}
	return n, nil
}

// Arity is the number of inputs.
func (o *Op) Arity() int { return len(o.inShapes) }

// Type is float32 tensors of the built input ranks to a float32 tensor of the output rank.
func (o *Op) Type() hm.Type {
	ts := make([]hm.Type, 0, len(o.inShapes)+1)
	for _, s := range o.inShapes {
		ts = append(ts, tensorType(len(s)))
	}
	ts = append(ts, tensorType(len(o.out)))
	return hm.NewFnType(ts...)
}

func tensorType(dims int) hm.Type {
	if dims == 0 {
		return tensor.Float32
	}
	return gorgonia.TensorType{Dims: dims, Of: tensor.Float32}
}

// InferShape returns the output shape fixed when the node was built, after checking the inputs
// have the shapes the node was built for.
func (o *Op) InferShape(in ...gorgonia.DimSizer) (tensor.Shape, error) {
	if len(in) != len(o.inShapes) {
		return nil, fmt.Errorf("nn: %s: %d inputs, want %d", o.name, len(in), len(o.inShapes))
	}
	for i, ds := range in {
		if s, ok := ds.(tensor.Shape); ok && !s.Eq(o.inShapes[i]) {
			return nil, fmt.Errorf("nn: %s: input %d has shape %v, want %v", o.name, i, s, o.inShapes[i])
		}
	}
	return o.out.Clone(), nil
}

// Do computes the result into a new tensor. A view op returns a tensor sharing its input's data.
func (o *Op) Do(vals ...gorgonia.Value) (gorgonia.Value, error) {
	if vk, ok := o.k.(viewKernel); ok {
		src, err := o.inputData(vals)
		if err != nil {
			return nil, err
		}
		off := vk.offset()
		return tensor.New(tensor.WithShape(o.out...), tensor.WithBacking(src[0][off:off+shapeSize(o.out)])), nil
	}
	out := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(o.out...))
	return o.UsePreallocDo(out, vals...)
}

// UsePreallocDo computes the result into prealloc, which must hold a float32 tensor of the
// output's size.
func (o *Op) UsePreallocDo(prealloc gorgonia.Value, vals ...gorgonia.Value) (gorgonia.Value, error) {
	src, err := o.inputData(vals)
	if err != nil {
		return nil, err
	}
	dst, err := f32Data(prealloc)
	if err != nil {
		return nil, fmt.Errorf("nn: %s: output buffer: %w", o.name, err)
	}
	if n := shapeSize(o.out); len(dst) < n {
		return nil, fmt.Errorf("nn: %s: output buffer holds %d values, want %d", o.name, len(dst), n)
	} else {
		dst = dst[:n]
	}
	if vk, ok := o.k.(viewKernel); ok {
		copy(dst, src[0][vk.offset():])
	} else if err := o.k.run(dst, src); err != nil {
		return nil, fmt.Errorf("nn: %s: %w", o.name, err)
	}
	return prealloc, nil
}

func (o *Op) inputData(vals []gorgonia.Value) ([][]float32, error) {
	if len(vals) != len(o.inShapes) {
		return nil, fmt.Errorf("nn: %s: %d inputs, want %d", o.name, len(vals), len(o.inShapes))
	}
	src := make([][]float32, len(vals))
	for i, v := range vals {
		if v == nil {
			return nil, fmt.Errorf("nn: %s: input %d has no value", o.name, i)
		}
		if !v.Shape().Eq(o.inShapes[i]) {
			return nil, fmt.Errorf("nn: %s: input %d has shape %v, want %v", o.name, i, v.Shape(), o.inShapes[i])
		}
		d, err := f32Data(v)
		if err != nil {
			return nil, fmt.Errorf("nn: %s: input %d: %w", o.name, i, err)
		}
		src[i] = d[:shapeSize(o.inShapes[i])]
	}
	return src, nil
}

// f32Data returns the float32 elements of a dense value.
func f32Data(v gorgonia.Value) ([]float32, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("value is %T, want *tensor.Dense", v)
	}
	if d.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("value is %v, want float32", d.Dtype())
	}
	if d.IsView() {
		return nil, fmt.Errorf("value is a strided view; materialize it first")
	}
	return d.Float32s()[:d.Size()], nil // Float32s, unlike Data, does not allocate
}

// maxElements bounds the elements of one value so that its size in bytes fits in an int on
// every platform (32-bit ones included).
const maxElements = math.MaxInt / 4

// shapeSize is the element count of s, 1 for a scalar; -1 when a dimension is negative or the
// count exceeds maxElements (checked before each multiplication, so it never wraps).
func shapeSize(s tensor.Shape) int {
	n := 1
	for _, d := range s {
		if d < 0 || d != 0 && n > maxElements/d {
			return -1
		}
		n *= d
	}
	return n
}

// ReturnsPtr is false: the result is a fresh value (views excepted, which the executor knows).
func (o *Op) ReturnsPtr() bool { return false }

// CallsExtern is false: all kernels are Go.
func (o *Op) CallsExtern() bool { return false }

// OverwritesInput is -1: no input is ever written.
func (o *Op) OverwritesInput() int { return -1 }

// WriteHash writes the op's name, every parameter and the shapes it was built for.
func (o *Op) WriteHash(h hash.Hash) {
	fmt.Fprintf(h, "smallsd/nn.%s %T%+v %v→%v", o.name, o.k, o.k, o.inShapes, o.out)
}

// Hashcode is the FNV-1a hash of WriteHash.
func (o *Op) Hashcode() uint32 {
	h := fnv.New32a()
	o.WriteHash(h)
	return h.Sum32()
}

// String names the op and its parameters.
func (o *Op) String() string { return fmt.Sprintf("%s%+v", o.name, o.k) }
