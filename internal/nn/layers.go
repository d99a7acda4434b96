package nn

import (
	"fmt"
	"sync"

	"github.com/smallsd/smallsd/internal/kernels"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Param is one weight tensor of a layer with its full checkpoint name: a float32 tensor T, or
// for the weight matrix of a Linear or Conv2d built from a View that prefers half weights, the
// half bits Half, or for a Linear's float32 or IEEE half weight matrix its panels packed at load
// (Packed, linear_packed.go). Only one of T, Half and Packed is set.
type Param struct {
	Name   string
	T      *tensor.Dense
	Half   *HalfWeight
	Packed *kernels.PackedWeight
}

// loadParam reads name under w with exactly shape.
func loadParam(w weights.View, name string, shape ...int) (Param, error) {
	t, err := w.Tensor(name, shape...)
	if err != nil {
		return Param{}, err
	}
	full := fullName(w, name)
	if t.Dtype() != tensor.Float32 {
		return Param{}, fmt.Errorf("nn: weight %s is %v, want float32", full, t.Dtype())
	}
	return Param{Name: full, T: t}, nil
}

// fullName is the checkpoint name of the tensor name under w.
func fullName(w weights.View, name string) string {
	if w.Prefix() == "" {
		return name
	}
	return w.Prefix() + "." + name
}

// Node returns the graph input node bound to the weight. Calling it twice in one graph returns
// the same node. The name carries the tensor's address so that weights of different models with
// the same name never merge.
func (p Param) Node(g *gorgonia.ExprGraph) *gorgonia.Node {
	if p.T == nil {
		return nil
	}
	s := p.T.Shape()
	return gorgonia.NewTensor(g, tensor.Float32, len(s), gorgonia.WithShape(s...),
		gorgonia.WithName(fmt.Sprintf("%s@%p", p.Name, p.T)), gorgonia.WithValue(p.T))
}

// Linear is torch.nn.Linear: weight (out×in), bias (out) when built with one. A fused Linear
// (NewFusedLinear) stacks several layers of equal width that read the same input: Parts names
// them, and ForwardParts runs them as one matrix product.
type Linear struct {
	Weight, Bias Param // Bias.T is nil without bias
	In, Out      int
	Parts        []string // a fused Linear's layers (their weights' full names) in order; nil for one layer

	srcs     []weights.View // what the layer was read from (one per part), for packing again after ReleasePacked
	mu       sync.Mutex     // guards Weight.Packed and released
	released bool           // ReleasePacked dropped Weight.Packed
}

// NewLinear reads "weight" (out×in) and, when bias is set, "bias" (out) under w. The weight is
// packed at load (Weight.Packed; float32, or half bits when w.PreferHalf()) and Forward uses
// AffinePacked; bf16 weights (w.PreferBF16()) are kept as bits (Weight.Half) for AffineHalf.
func NewLinear(w weights.View, in, out int, bias bool) (*Linear, error) {
	l := &Linear{In: in, Out: out, srcs: []weights.View{w}}
	var err error
	if l.Weight, err = loadLinearWeight(l.srcs, out, in); err != nil {
		return nil, err
	}
	l.Weight = packBF16(l.Weight)
	if bias {
		if l.Bias, err = loadParam(w, "bias", out); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Forward returns x·weightᵀ + bias for x of shape …×in (plus the layer's low-rank update when
// the graph has one: see AddLoRAInputs).
func (l *Linear) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	if l.Parts != nil {
		return nil, fmt.Errorf("nn: linear %s fuses %d layers: use ForwardParts", l.Weight.Name, len(l.Parts))
	}
	y, err := l.affine(x)
	if err != nil {
		return nil, err
	}
	return addLoRA(x, y, l.Weight.Name, false, 0, 0)
}

func (l *Linear) affine(x *gorgonia.Node) (*gorgonia.Node, error) {
	g := x.Graph()
	w, err := l.packed()
	if err != nil {
		return nil, err
	}
	if w != nil {
		return AffinePacked(x, w, l.Bias.Node(g))
	}
	if l.Weight.Half != nil {
		return AffineHalf(x, l.Weight.Half, l.Bias.Node(g))
	}
	return Affine(x, l.Weight.Node(g), l.Bias.Node(g))
}

// Conv2d is torch.nn.Conv2d with a bias, square kernel, equal stride and padding on both axes
// (every convolution of SD 1.x).
type Conv2d struct {
	Weight, Bias                 Param
	In, Out, Kernel, Stride, Pad int
}

// NewConv2d reads "weight" (out×in×kernel×kernel) and "bias" (out) under w. When
// w.PreferHalf() the weight is kept as half bits (Weight.Half) and Forward uses ConvHalf.
func NewConv2d(w weights.View, in, out, kernel, stride, padding int) (*Conv2d, error) {
	c := &Conv2d{In: in, Out: out, Kernel: kernel, Stride: stride, Pad: padding}
	var err error
	if c.Weight, err = loadWeight(w, "weight", out, in, kernel, kernel); err != nil {
		return nil, err
	}
	c.Weight = packBF16Stride(c.Weight, stride)
	if c.Bias, err = loadParam(w, "bias", out); err != nil {
		return nil, err
	}
	return c, nil
}

// Forward convolves x (N×in×H×W) (and adds the layer's low-rank update when the graph has one:
// see AddLoRAInputs).
func (c *Conv2d) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	y, err := c.conv(x)
	if err != nil {
		return nil, err
	}
	return addLoRA(x, y, c.Weight.Name, true, c.Stride, c.Pad)
}

func (c *Conv2d) conv(x *gorgonia.Node) (*gorgonia.Node, error) {
	g := x.Graph()
	if c.Weight.Half != nil {
		return ConvHalf(x, c.Weight.Half, c.Bias.Node(g), c.Stride, c.Pad)
	}
	return Conv(x, c.Weight.Node(g), c.Bias.Node(g), c.Stride, c.Pad)
}

// GroupNorm is torch.nn.GroupNorm with affine weight and bias.
type GroupNorm struct {
	Weight, Bias     Param
	Groups, Channels int
	Eps              float32
}

// NewGroupNorm reads "weight" and "bias" (channels each) under w.
func NewGroupNorm(w weights.View, groups, channels int, eps float32) (*GroupNorm, error) {
	if groups < 1 || channels%groups != 0 {
		return nil, fmt.Errorf("nn: %s: %d channels do not split into %d groups", w.Prefix(), channels, groups)
	}
	n := &GroupNorm{Groups: groups, Channels: channels, Eps: eps}
	var err error
	if n.Weight, err = loadParam(w, "weight", channels); err != nil {
		return nil, err
	}
	if n.Bias, err = loadParam(w, "bias", channels); err != nil {
		return nil, err
	}
	return n, nil
}

// Forward normalises x (N×C×…).
func (n *GroupNorm) Forward(x *gorgonia.Node) (*gorgonia.Node, error) { return n.forward(x, false) }

// ForwardSiLU returns silu(norm(x)) in one fused op.
func (n *GroupNorm) ForwardSiLU(x *gorgonia.Node) (*gorgonia.Node, error) { return n.forward(x, true) }

func (n *GroupNorm) forward(x *gorgonia.Node, silu bool) (*gorgonia.Node, error) {
	g := x.Graph()
	return GroupNormalize(x, n.Weight.Node(g), n.Bias.Node(g), n.Groups, n.Eps, silu)
}

// LayerNorm is torch.nn.LayerNorm over the last axis with affine weight and bias.
type LayerNorm struct {
	Weight, Bias Param
	Dim          int
	Eps          float32
}

// NewLayerNorm reads "weight" and "bias" (dim each) under w.
func NewLayerNorm(w weights.View, dim int, eps float32) (*LayerNorm, error) {
	n := &LayerNorm{Dim: dim, Eps: eps}
	var err error
	if n.Weight, err = loadParam(w, "weight", dim); err != nil {
		return nil, err
	}
	if n.Bias, err = loadParam(w, "bias", dim); err != nil {
		return nil, err
	}
	return n, nil
}

// Forward normalises the last axis of x.
func (n *LayerNorm) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	g := x.Graph()
	return LayerNormalize(x, n.Weight.Node(g), n.Bias.Node(g), n.Eps)
}

// Embedding is torch.nn.Embedding: a vocab×dim table.
type Embedding struct {
	Weight     Param
	Vocab, Dim int

	widen sync.Once // Table's float32 copy of a 16-bit table
	wide  Param
}

// NewEmbedding reads "weight" (vocab×dim) under w. When w prefers half (or bf16) weights and
// the table is stored in that format, it is kept as stored (Weight.Half, aliasing a mapped file):
// lookups widen the rows they read, so the values are exactly those of the float32 table, and a
// large vocabulary (CLIP's 49408×768) costs no float32 copy. Other tables are float32.
func NewEmbedding(w weights.View, vocab, dim int) (*Embedding, error) {
	e := &Embedding{Vocab: vocab, Dim: dim}
	var err error
	load := loadParam
	if bf16 := w.PreferBF16(); (bf16 && w.StoredDtype("weight") == "BF16") || (!bf16 && w.PreferHalf() && w.StoredDtype("weight") == "F16") {
		load = loadWeight
	}
	if e.Weight, err = load(w, "weight", vocab, dim); err != nil {
		return nil, err
	}
	return e, nil
}

// Forward looks up ids (float32 node holding integral ids, any shape): the result has a last
// axis of Dim.
func (e *Embedding) Forward(ids *gorgonia.Node) (*gorgonia.Node, error) {
	if h := e.Weight.Half; h != nil {
		return EmbedHalf(ids, h)
	}
	return Embed(ids, e.Weight.Node(ids.Graph()))
}

// Table returns the embedding table as a graph node, for position embeddings added whole. A
// table kept as 16-bit floats is widened to float32 once, on the first call.
func (e *Embedding) Table(g *gorgonia.ExprGraph) *gorgonia.Node {
	if h := e.Weight.Half; h != nil {
		e.widen.Do(func() {
			e.wide = Param{Name: e.Weight.Name, T: tensor.New(tensor.WithShape(h.Shape.Clone()...), tensor.WithBacking(h.Float32s()))}
		})
		return e.wide.Node(g)
	}
	return e.Weight.Node(g)
}
