package nn

import (
	"fmt"
	"math"

	"github.com/smallsd/smallsd/internal/kernels"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// This file holds the graph operations: functions that add one node computed by an
// internal/kernels routine. Layers (layers.go, blocks.go) are built from them; models use them
// for the glue between layers. All take and return float32 nodes and check shapes when the node
// is built.

func shapeErr(op string, what string, got, want any) error {
	return fmt.Errorf("nn: %s: %s has shape %v, want %v", op, what, got, want)
}

type linearK struct {
	Rows, In, Out int
	Bias          bool
}

func (k linearK) run(dst []float32, src [][]float32) error {
	var b []float32
	if k.Bias {
		b = src[2]
	}
	kernels.Linear(src[0], k.Rows, k.In, src[1], k.Out, b, dst)
	return nil
}

// Affine returns x·wᵀ + b (torch.nn.functional.linear): x is …×in, w is out×in, b has out values
// or is nil; the result is …×out.
func Affine(x, w, b *gorgonia.Node) (*gorgonia.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if len(xs) < 1 || len(ws) != 2 || xs[len(xs)-1] != ws[1] {
		return nil, fmt.Errorf("nn: linear: input %v and weight %v do not match (want …×in and out×in)", xs, ws)
	}
	k := linearK{Rows: shapeSize(xs[:len(xs)-1]), In: ws[1], Out: ws[0], Bias: b != nil}
	out := append(tensor.Shape{}, xs...)
	out[len(out)-1] = k.Out
	if b == nil {
		return apply("linear", k, out, x, w)
	}
	if !b.Shape().Eq(tensor.Shape{k.Out}) {
		return nil, shapeErr("linear", "bias", b.Shape(), []int{k.Out})
	}
	return apply("linear", k, out, x, w, b)
}

type convK struct {
	P    kernels.ConvParams
	Bias bool
	Wino bool // Winograd F(4×4, 3×3) (conv_winograd.go)
}

func (k convK) run(dst []float32, src [][]float32) error {
	var b []float32
	if k.Bias {
		b = src[2]
	}
	if k.Wino {
		kernels.Conv2DWinogradW(k.P, src[0], src[1], b, dst)
		return nil
	}
	kernels.Conv2D(k.P, src[0], src[1], b, dst)
	return nil
}

// Conv returns the 2-D convolution of x (N×C×H×W) with w (K×C×KH×KW) plus b (K values or nil),
// with the same stride and zero padding on both axes, as torch.nn.Conv2d.
func Conv(x, w, b *gorgonia.Node, stride, padding int) (*gorgonia.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if len(xs) != 4 || len(ws) != 4 || xs[1] != ws[1] {
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
	k := convK{P: p, Bias: b != nil, Wino: useWinograd(p)}
	out := tensor.Shape{p.N, p.K, oh, ow}
	if b == nil {
		return apply("conv2d", k, out, x, w)
	}
	if !b.Shape().Eq(tensor.Shape{p.K}) {
		return nil, shapeErr("conv2d", "bias", b.Shape(), []int{p.K})
	}
	return apply("conv2d", k, out, x, w, b)
}

type groupNormK struct {
	N, C, HW, Groups int
	Eps              float32
	SiLU             bool
}

func (groupNormK) inPlaceArgs() []int { return []int{0} }

func (k groupNormK) run(dst []float32, src [][]float32) error {
	kernels.GroupNorm(src[0], dst, k.N, k.C, k.HW, k.Groups, k.Eps, src[1], src[2], k.SiLU)
	return nil
}

// GroupNormalize returns torch.nn.GroupNorm(groups, C, eps) of x (N×C×…) with weight gamma and
// bias beta (C values each), followed by SiLU when silu is set.
func GroupNormalize(x, gamma, beta *gorgonia.Node, groups int, eps float32, silu bool) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) < 2 {
		return nil, shapeErr("groupnorm", "input", xs, "N×C×…")
	}
	c := xs[1]
	if groups < 1 || c%groups != 0 {
		return nil, fmt.Errorf("nn: groupnorm: %d channels do not split into %d groups", c, groups)
	}
	for _, p := range []*gorgonia.Node{gamma, beta} {
		if !p.Shape().Eq(tensor.Shape{c}) {
			return nil, shapeErr("groupnorm", p.Name(), p.Shape(), []int{c})
		}
	}
	k := groupNormK{N: xs[0], C: c, HW: shapeSize(xs[2:]), Groups: groups, Eps: eps, SiLU: silu}
	return apply("groupnorm", k, xs, x, gamma, beta)
}

type layerNormK struct {
	Rows, Cols int
	Eps        float32
}

func (layerNormK) inPlaceArgs() []int { return []int{0} }

func (k layerNormK) run(dst []float32, src [][]float32) error {
	kernels.LayerNorm(src[0], dst, k.Rows, k.Cols, k.Eps, src[1], src[2])
	return nil
}

// LayerNormalize returns torch.nn.LayerNorm over the last axis of x with weight gamma and bias
// beta (one value per element of that axis).
func LayerNormalize(x, gamma, beta *gorgonia.Node, eps float32) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) < 1 {
		return nil, shapeErr("layernorm", "input", xs, "…×C")
	}
	c := xs[len(xs)-1]
	for _, p := range []*gorgonia.Node{gamma, beta} {
		if !p.Shape().Eq(tensor.Shape{c}) {
			return nil, shapeErr("layernorm", p.Name(), p.Shape(), []int{c})
		}
	}
	return apply("layernorm", layerNormK{Rows: shapeSize(xs) / c, Cols: c, Eps: eps}, xs, x, gamma, beta)
}

// actK is an element-wise activation; Kind names it (and so enters the op's hash).
type actK struct{ Kind string }

func (actK) inPlaceArgs() []int { return []int{0} }

func (k actK) run(dst []float32, src [][]float32) error {
	switch k.Kind {
	case "silu":
		kernels.SiLU(dst, src[0])
	case "gelu":
		kernels.GELU(dst, src[0])
	case "quick_gelu":
		kernels.QuickGELU(dst, src[0])
	default:
		return fmt.Errorf("unknown activation %q", k.Kind)
	}
	return nil
}

// SiLU returns x·sigmoid(x) element-wise.
func SiLU(x *gorgonia.Node) (*gorgonia.Node, error) { return apply("silu", actK{"silu"}, x.Shape(), x) }

// GELU returns the exact (erf) GELU of x element-wise.
func GELU(x *gorgonia.Node) (*gorgonia.Node, error) { return apply("gelu", actK{"gelu"}, x.Shape(), x) }

// QuickGELU returns x·sigmoid(1.702·x) element-wise (CLIP's activation).
func QuickGELU(x *gorgonia.Node) (*gorgonia.Node, error) {
	return apply("quick_gelu", actK{"quick_gelu"}, x.Shape(), x)
}

// activationKind maps a config's activation name to the kernel's.
func activationKind(name string) (string, error) {
	switch name {
	case "silu", "swish":
		return "silu", nil
	case "gelu", "quick_gelu":
		return name, nil
	}
	return "", fmt.Errorf("nn: unsupported activation %q (want silu, swish, gelu or quick_gelu)", name)
}

// Activation returns the activation named as in diffusers/transformers configs ("silu"/"swish",
// "gelu", "quick_gelu") of x.
func Activation(name string, x *gorgonia.Node) (*gorgonia.Node, error) {
	kind, err := activationKind(name)
	if err != nil {
		return nil, err
	}
	return apply(kind, actK{kind}, x.Shape(), x)
}

type gegluK struct{ Rows, Cols int }

func (gegluK) inPlaceArgs() []int { return []int{0} }

func (k gegluK) run(dst []float32, src [][]float32) error {
	kernels.GEGLU(dst, src[0], k.Rows, k.Cols)
	return nil
}

// GEGLU splits the last axis of x (…×2C) in halves a, b and returns a·gelu(b) (…×C).
func GEGLU(x *gorgonia.Node) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) < 1 || xs[len(xs)-1]%2 != 0 {
		return nil, shapeErr("geglu", "input", xs, "…×2C")
	}
	c := xs[len(xs)-1] / 2
	out := append(tensor.Shape{}, xs...)
	out[len(out)-1] = c
	return apply("geglu", gegluK{Rows: shapeSize(xs) / (2 * c), Cols: c}, out, x)
}

type addK struct{}

func (addK) inPlaceArgs() []int { return []int{0, 1} }

func (addK) run(dst []float32, src [][]float32) error {
	kernels.Add(dst, src[0], src[1])
	return nil
}

// Add returns a + b for two nodes of the same shape.
func Add(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	if !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("nn: add: shapes %v and %v differ", a.Shape(), b.Shape())
	}
	return apply("add", addK{}, a.Shape(), a, b)
}

type addBroadcastK struct{ Inner int }

func (addBroadcastK) inPlaceArgs() []int { return []int{0} }

func (k addBroadcastK) run(dst []float32, src [][]float32) error {
	for o := 0; o < len(dst); o += k.Inner {
		kernels.Add(dst[o:o+k.Inner], src[0][o:o+k.Inner], src[1])
	}
	return nil
}

// AddBroadcast returns a + b where b's shape is a trailing part of a's (b repeated over a's
// leading axes): CLIP's position embeddings (77×768) added to a batch of token embeddings.
func AddBroadcast(a, b *gorgonia.Node) (*gorgonia.Node, error) {
	as, bs := a.Shape(), b.Shape()
	if len(bs) > len(as) || !as[len(as)-len(bs):].Eq(bs) {
		return nil, fmt.Errorf("nn: add_broadcast: shape %v is not a trailing part of %v", bs, as)
	}
	return apply("add_broadcast", addBroadcastK{Inner: shapeSize(bs)}, as, a, b)
}

type scaleK struct{ S float32 }

func (scaleK) inPlaceArgs() []int { return []int{0} }

func (k scaleK) run(dst []float32, src [][]float32) error {
	kernels.Scale(dst, src[0], k.S)
	return nil
}

// Scale returns x·s.
func Scale(x *gorgonia.Node, s float32) (*gorgonia.Node, error) {
	return apply("scale", scaleK{s}, x.Shape(), x)
}

type chanBiasK struct {
	N, C, HW  int
	PerSample bool
}

func (chanBiasK) inPlaceArgs() []int { return []int{0} }

func (k chanBiasK) run(dst []float32, src [][]float32) error {
	copy(dst, src[0])
	if k.PerSample {
		kernels.AddChannelBias(dst, k.N, k.C, k.HW, src[1])
		return nil
	}
	for i := 0; i < k.N; i++ {
		kernels.AddChannelBias(dst[i*k.C*k.HW:(i+1)*k.C*k.HW], 1, k.C, k.HW, src[1])
	}
	return nil
}

// AddChannelBias returns x (N×C×…) plus a bias broadcast over the trailing axes: bias is N×C
// (one value per sample and channel: a ResNet's projected time embedding) or C.
func AddChannelBias(x, bias *gorgonia.Node) (*gorgonia.Node, error) {
	xs, bs := x.Shape(), bias.Shape()
	if len(xs) < 2 {
		return nil, shapeErr("add_channel_bias", "input", xs, "N×C×…")
	}
	k := chanBiasK{N: xs[0], C: xs[1], HW: shapeSize(xs[2:])}
	switch {
	case bs.Eq(tensor.Shape{k.N, k.C}):
		k.PerSample = true
	case bs.Eq(tensor.Shape{k.C}):
	default:
		return nil, shapeErr("add_channel_bias", "bias", bs, fmt.Sprintf("(%d, %d) or (%d)", k.N, k.C, k.C))
	}
	return apply("add_channel_bias", k, xs, x, bias)
}

type attnK struct {
	P    kernels.AttentionParams
	BF16 bool // kernels.AttentionBF16 (bf16.go)
}

func (k attnK) run(dst []float32, src [][]float32) error {
	if k.BF16 {
		kernels.AttentionBF16(k.P, src[0], src[1], src[2], dst)
		return nil
	}
	kernels.Attention(k.P, src[0], src[1], src[2], dst)
	return nil
}

// Attend returns multi-head scaled dot-product attention softmax(scale·q·kᵀ)·v: q is
// B×Nq×(heads·d), k and v are B×Nk×(heads·d), head h uses columns h·d…; the result has q's
// shape. causal masks key j > query i (CLIP's text encoder).
func Attend(q, k, v *gorgonia.Node, heads int, scale float32, causal bool) (*gorgonia.Node, error) {
	return attend(q, k, v, heads, scale, causal, false)
}

// attend is Attend, with the bf16 products of kernels.AttentionBF16 when bf16 is set.
func attend(q, k, v *gorgonia.Node, heads int, scale float32, causal, bf16 bool) (*gorgonia.Node, error) {
	qs, ks, vs := q.Shape(), k.Shape(), v.Shape()
	if len(qs) != 3 || len(ks) != 3 || !ks.Eq(vs) || qs[0] != ks[0] || qs[2] != ks[2] {
		return nil, fmt.Errorf("nn: attention: q %v, k %v, v %v do not match (want B×Nq×D, B×Nk×D, B×Nk×D)", qs, ks, vs)
	}
	if heads < 1 || qs[2]%heads != 0 {
		return nil, fmt.Errorf("nn: attention: width %d does not split into %d heads", qs[2], heads)
	}
	if causal && qs[1] != ks[1] {
		return nil, fmt.Errorf("nn: attention: causal mask needs as many queries (%d) as keys (%d)", qs[1], ks[1])
	}
	p := kernels.AttentionParams{Batch: qs[0], Heads: heads, Nq: qs[1], Nk: ks[1], HeadDim: qs[2] / heads,
		Scale: scale, Causal: causal}
	return apply("attention", attnK{p, bf16}, qs, q, k, v)
}

type timestepK struct {
	Dim          int
	FlipSinToCos bool
	Shift, Scale float32
	MaxPeriod    float32
}

// run follows diffusers' get_timestep_embedding step by step in float32, as torch computes it.
func (k timestepK) run(dst []float32, src [][]float32) error {
	half := k.Dim / 2
	negLog := float32(-math.Log(float64(k.MaxPeriod)))
	den := float32(half) - k.Shift
	for r, t := range src[0] {
		row := dst[r*k.Dim : (r+1)*k.Dim]
		for i := 0; i < half; i++ {
			freq := float32(math.Exp(float64(negLog * float32(i) / den)))
			arg := k.Scale * (t * freq)
			s, c := float32(math.Sin(float64(arg))), float32(math.Cos(float64(arg)))
			if k.FlipSinToCos {
				s, c = c, s
			}
			row[i], row[half+i] = s, c
		}
		if k.Dim%2 == 1 {
			row[k.Dim-1] = 0
		}
	}
	return nil
}

// TimestepEmbed returns diffusers' sinusoidal get_timestep_embedding of t (N timesteps) as N×dim.
func TimestepEmbed(t *gorgonia.Node, dim int, flipSinToCos bool, downscaleFreqShift, scale, maxPeriod float32) (*gorgonia.Node, error) {
	ts := t.Shape()
	if len(ts) != 1 {
		return nil, shapeErr("timestep_embedding", "timesteps", ts, "(N)")
	}
	if dim < 2 || float32(dim/2) == downscaleFreqShift {
		return nil, fmt.Errorf("nn: timestep_embedding: dimension %d with frequency shift %v", dim, downscaleFreqShift)
	}
	k := timestepK{Dim: dim, FlipSinToCos: flipSinToCos, Shift: downscaleFreqShift, Scale: scale, MaxPeriod: maxPeriod}
	return apply("timestep_embedding", k, tensor.Shape{ts[0], dim}, t)
}

type embedK struct{ Rows, Vocab, Dim int }

func (k embedK) run(dst []float32, src [][]float32) error {
	for r, id := range src[0] {
		i := int(id)
		if float32(i) != id || i < 0 || i >= k.Vocab {
			return fmt.Errorf("token id %v at position %d is not in [0, %d)", id, r, k.Vocab)
		}
		copy(dst[r*k.Dim:(r+1)*k.Dim], src[1][i*k.Dim:])
	}
	return nil
}

type embedHalfK struct {
	Rows, Vocab, Dim int
	W                *HalfWeight
}

func (k embedHalfK) run(dst []float32, src [][]float32) error {
	for r, id := range src[0] {
		i := int(id)
		if float32(i) != id || i < 0 || i >= k.Vocab {
			return fmt.Errorf("token id %v at position %d is not in [0, %d)", id, r, k.Vocab)
		}
		k.W.widen(dst[r*k.Dim:(r+1)*k.Dim], k.W.Bits[i*k.Dim:(i+1)*k.Dim])
	}
	return nil
}

// EmbedHalf is Embed with the table (vocab×dim) held as 16-bit floats: the rows ids select are
// widened to float32.
func EmbedHalf(ids *gorgonia.Node, table *HalfWeight) (*gorgonia.Node, error) {
	ts := table.Shape
	if len(ts) != 2 || len(table.Bits) != ts[0]*ts[1] {
		return nil, fmt.Errorf("nn: embedding: half table %v is not vocab×dim", table)
	}
	out := append(ids.Shape().Clone(), ts[1])
	return apply("embedding_f16", embedHalfK{Rows: shapeSize(ids.Shape()), Vocab: ts[0], Dim: ts[1], W: table}, out, ids)
}

// Embed returns the rows of table (vocab×dim) selected by ids (any shape, holding integral
// token ids as float32, exact below 2²⁴); the result has ids' shape plus a last axis of dim. An
// id out of range fails the Run.
func Embed(ids, table *gorgonia.Node) (*gorgonia.Node, error) {
	ts := table.Shape()
	if len(ts) != 2 {
		return nil, shapeErr("embedding", "table", ts, "vocab×dim")
	}
	out := append(ids.Shape().Clone(), ts[1])
	return apply("embedding", embedK{Rows: shapeSize(ids.Shape()), Vocab: ts[0], Dim: ts[1]}, out, ids, table)
}
