package nn

import (
	"fmt"
	"math"

	"github.com/smallsd/smallsd/internal/kernels"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
)

// AttentionNames are the checkpoint names of an attention's projections.
type AttentionNames struct{ Q, K, V, Out string }

// DiffusersNames are diffusers' Attention names: to_q, to_k, to_v, to_out.0.
func DiffusersNames() AttentionNames { return AttentionNames{"to_q", "to_k", "to_v", "to_out.0"} }

// LegacyAttentionNames are the names diffusers used before 0.14 for the VAE's attention
// (AttentionBlock): query, key, value, proj_attn.
func LegacyAttentionNames() AttentionNames {
	return AttentionNames{"query", "key", "value", "proj_attn"}
}

// CLIPNames are transformers' CLIPAttention names: q_proj, k_proj, v_proj, out_proj.
func CLIPNames() AttentionNames { return AttentionNames{"q_proj", "k_proj", "v_proj", "out_proj"} }

// AttentionConfig configures multi-head attention (diffusers' Attention, transformers'
// CLIPAttention).
type AttentionConfig struct {
	QueryDim int // width of the query input (and of the output)
	CrossDim int // width of the key/value input; 0 for self-attention (keys from the query input)
	Heads    int
	HeadDim  int
	QKVBias  bool           // q/k/v projections have biases (diffusers' bias=True; CLIP)
	Causal   bool           // query i attends to keys ≤ i (CLIP's text encoder)
	Names    AttentionNames // zero value: DiffusersNames
}

// Attention is multi-head scaled dot-product attention with input projections and an output
// projection (with bias), scale 1/√HeadDim. Projections that read the same input are one fused
// Linear (NewFusedLinear) when the inner width is a multiple of kernels.LinearPartAlign: Q, K
// and V are then the same Linear in a self-attention, K and V in a cross-attention.
type Attention struct {
	Q, K, V, Out *Linear
	cfg          AttentionConfig
}

// NewAttention reads the four projections under w.
func NewAttention(w weights.View, cfg AttentionConfig) (*Attention, error) {
	if cfg.Names == (AttentionNames{}) {
		cfg.Names = DiffusersNames()
	}
	if cfg.Heads < 1 || cfg.HeadDim < 1 || cfg.QueryDim < 1 {
		return nil, fmt.Errorf("nn: %s: attention with %d heads of %d on width %d", w.Prefix(), cfg.Heads, cfg.HeadDim, cfg.QueryDim)
	}
	kvDim := cfg.CrossDim
	if kvDim == 0 {
		kvDim = cfg.QueryDim
	}
	inner := cfg.Heads * cfg.HeadDim
	a := &Attention{cfg: cfg}
	q, k, v := w.Sub(cfg.Names.Q), w.Sub(cfg.Names.K), w.Sub(cfg.Names.V)
	fuse := inner%kernels.LinearPartAlign == 0
	var err error
	switch {
	case fuse && cfg.CrossDim == 0:
		a.Q, err = NewFusedLinear([]weights.View{q, k, v}, cfg.QueryDim, inner, cfg.QKVBias)
		a.K, a.V = a.Q, a.Q
	case fuse:
		if a.Q, err = NewLinear(q, cfg.QueryDim, inner, cfg.QKVBias); err == nil {
			a.K, err = NewFusedLinear([]weights.View{k, v}, kvDim, inner, cfg.QKVBias)
			a.V = a.K
		}
	default:
		if a.Q, err = NewLinear(q, cfg.QueryDim, inner, cfg.QKVBias); err == nil {
			if a.K, err = NewLinear(k, kvDim, inner, cfg.QKVBias); err == nil {
				a.V, err = NewLinear(v, kvDim, inner, cfg.QKVBias)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if a.Out, err = NewLinear(w.Sub(cfg.Names.Out), inner, cfg.QueryDim, true); err != nil {
		return nil, err
	}
	return a, nil
}

// Forward attends from x (B×N×QueryDim) to context (B×M×CrossDim), or to x itself when context
// is nil, and returns B×N×QueryDim.
func (a *Attention) Forward(x, context *gorgonia.Node) (*gorgonia.Node, error) {
	q, k, v, err := a.project(x, context)
	if err != nil {
		return nil, err
	}
	scale := float32(1 / math.Sqrt(float64(a.cfg.HeadDim)))
	h, err := attend(q, k, v, a.cfg.Heads, scale, a.cfg.Causal, a.bf16())
	if err != nil {
		return nil, err
	}
	return a.Out.Forward(h)
}

// project returns the queries of x and the keys and values of context (of x when nil).
func (a *Attention) project(x, context *gorgonia.Node) (q, k, v *gorgonia.Node, err error) {
	if context == nil {
		context = x
	}
	var qs, kvs []*gorgonia.Node
	switch {
	case a.Q == a.K: // fused q/k/v: one product when they read the same input
		if qs, err = a.Q.ForwardParts(x); err == nil && context != x {
			kvs, err = a.Q.ForwardParts(context)
		}
		if err == nil && context == x {
			kvs = qs
		}
		if err != nil {
			return nil, nil, nil, err
		}
		return qs[0], kvs[1], kvs[2], nil
	case a.K == a.V: // fused k/v
		if q, err = a.Q.Forward(x); err == nil {
			kvs, err = a.K.ForwardParts(context)
		}
		if err != nil {
			return nil, nil, nil, err
		}
		return q, kvs[0], kvs[1], nil
	}
	if q, err = a.Q.Forward(x); err == nil {
		if k, err = a.K.Forward(context); err == nil {
			v, err = a.V.Forward(context)
		}
	}
	return q, k, v, err
}

// FeedForward is diffusers' FeedForward with the GEGLU activation: net.0.proj (dim → 2·inner),
// a·gelu(b) on the halves, net.2 (inner → dimOut).
type FeedForward struct {
	Proj, Out *Linear
}

// NewFeedForward reads net.0.proj and net.2 under w; inner is dim·mult in diffusers (mult 4).
func NewFeedForward(w weights.View, dim, inner, dimOut int) (*FeedForward, error) {
	proj, err := NewLinear(w.Sub("net.0.proj"), dim, 2*inner, true)
	if err != nil {
		return nil, err
	}
	out, err := NewLinear(w.Sub("net.2"), inner, dimOut, true)
	if err != nil {
		return nil, err
	}
	return &FeedForward{Proj: proj, Out: out}, nil
}

// Forward applies the feed-forward to x (…×dim).
func (f *FeedForward) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	h, err := f.Proj.ForwardGEGLU(x)
	if err != nil {
		return nil, err
	}
	return f.Out.Forward(h)
}

// BasicTransformerBlockConfig configures diffusers' BasicTransformerBlock (layer_norm variant,
// GEGLU feed-forward, self-attention then cross-attention).
type BasicTransformerBlockConfig struct {
	Dim           int
	Heads         int
	HeadDim       int
	CrossDim      int     // cross_attention_dim; 0 makes attn2 a self-attention
	AttentionBias bool    // attention_bias: biases on to_q/to_k/to_v
	NormEps       float32 // 0 means diffusers' default 1e-5
}

// BasicTransformerBlock is norm1→attn1 (self), norm2→attn2 (cross), norm3→ff, each added to
// the residual stream.
type BasicTransformerBlock struct {
	Norm1, Norm2, Norm3 *LayerNorm
	Attn1, Attn2        *Attention
	FF                  *FeedForward
}

// NewBasicTransformerBlock reads norm1, attn1, norm2, attn2, norm3 and ff under w.
func NewBasicTransformerBlock(w weights.View, cfg BasicTransformerBlockConfig) (*BasicTransformerBlock, error) {
	eps := cfg.NormEps
	if eps == 0 {
		eps = 1e-5
	}
	b := &BasicTransformerBlock{}
	var err error
	if b.Norm1, err = NewLayerNorm(w.Sub("norm1"), cfg.Dim, eps); err != nil {
		return nil, err
	}
	ac := AttentionConfig{QueryDim: cfg.Dim, Heads: cfg.Heads, HeadDim: cfg.HeadDim, QKVBias: cfg.AttentionBias}
	if b.Attn1, err = NewAttention(w.Sub("attn1"), ac); err != nil {
		return nil, err
	}
	if b.Norm2, err = NewLayerNorm(w.Sub("norm2"), cfg.Dim, eps); err != nil {
		return nil, err
	}
	ac.CrossDim = cfg.CrossDim
	if b.Attn2, err = NewAttention(w.Sub("attn2"), ac); err != nil {
		return nil, err
	}
	if b.Norm3, err = NewLayerNorm(w.Sub("norm3"), cfg.Dim, eps); err != nil {
		return nil, err
	}
	if b.FF, err = NewFeedForward(w.Sub("ff"), cfg.Dim, 4*cfg.Dim, cfg.Dim); err != nil {
		return nil, err
	}
	return b, nil
}

// Forward runs the block on x (B×N×Dim) with the text states context (B×M×CrossDim; nil when
// attn2 is a self-attention).
func (b *BasicTransformerBlock) Forward(x, context *gorgonia.Node) (*gorgonia.Node, error) {
	return b.ForwardTaps(x, context, nil)
}

// ForwardTaps is Forward that also passes tap (when not nil) the outputs of "attn1", "attn2"
// and "ff", each before its residual add (diffusers' module names, relative to the block), so
// that callers can compare them with recorded intermediate outputs.
func (b *BasicTransformerBlock) ForwardTaps(x, context *gorgonia.Node, tap func(name string, n *gorgonia.Node)) (*gorgonia.Node, error) {
	if tap == nil {
		tap = func(string, *gorgonia.Node) {}
	}
	h, err := b.Norm1.Forward(x)
	if err == nil {
		h, err = b.Attn1.Forward(h, nil)
	}
	if err != nil {
		return nil, err
	}
	tap("attn1", h)
	x, err = Add(h, x)
	if err == nil {
		h, err = b.Norm2.Forward(x)
	}
	if err == nil {
		h, err = b.Attn2.Forward(h, context)
	}
	if err != nil {
		return nil, err
	}
	tap("attn2", h)
	x, err = Add(h, x)
	if err == nil {
		h, err = b.Norm3.Forward(x)
	}
	if err == nil {
		h, err = b.FF.Forward(h)
	}
	if err != nil {
		return nil, err
	}
	tap("ff", h)
	return Add(h, x)
}

// Linears returns the attention's projections (Q, K, V, Out; a fused one once), e.g. for
// ReleasePacked.
func (a *Attention) Linears() []*Linear {
	ls := []*Linear{a.Q}
	for _, l := range []*Linear{a.K, a.V, a.Out} {
		if l != ls[len(ls)-1] {
			ls = append(ls, l)
		}
	}
	return ls
}
