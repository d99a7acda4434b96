package nn

import (
	"fmt"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
)

// Transformer2DConfig configures diffusers' Transformer2DModel on continuous (image) input.
type Transformer2DConfig struct {
	InChannels          int
	Heads               int // num_attention_heads
	HeadDim             int // attention_head_dim; inner width is Heads·HeadDim
	CrossDim            int // cross_attention_dim (text width)
	Layers              int // num_layers; 0 means 1
	Groups              int // norm_num_groups; 0 means 32
	UseLinearProjection bool
	AttentionBias       bool
}

// Transformer2DModel is GroupNorm (eps 1e-6) → proj_in → transformer_blocks → proj_out, plus the
// input: proj_in/proj_out are 1×1 convolutions (SD 1.x) or, with UseLinearProjection, linears
// applied after/before the NCHW ↔ N(HW)C permute.
type Transformer2DModel struct {
	Norm              *GroupNorm
	ProjInConv        *Conv2d // without UseLinearProjection
	ProjOutConv       *Conv2d
	ProjIn, ProjOut   *Linear // with UseLinearProjection
	TransformerBlocks []*BasicTransformerBlock
	cfg               Transformer2DConfig
}

// NewTransformer2DModel reads norm, proj_in, transformer_blocks.<i> and proj_out under w.
func NewTransformer2DModel(w weights.View, cfg Transformer2DConfig) (*Transformer2DModel, error) {
	if cfg.Layers == 0 {
		cfg.Layers = 1
	}
	if cfg.Groups == 0 {
		cfg.Groups = 32
	}
	inner := cfg.Heads * cfg.HeadDim
	t := &Transformer2DModel{cfg: cfg}
	var err error
	if t.Norm, err = NewGroupNorm(w.Sub("norm"), cfg.Groups, cfg.InChannels, 1e-6); err != nil {
		return nil, err
	}
	if cfg.UseLinearProjection {
		t.ProjIn, err = NewLinear(w.Sub("proj_in"), cfg.InChannels, inner, true)
	} else {
		t.ProjInConv, err = NewConv2d(w.Sub("proj_in"), cfg.InChannels, inner, 1, 1, 0)
	}
	if err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Layers; i++ {
		b, err := NewBasicTransformerBlock(w.Sub(fmt.Sprintf("transformer_blocks.%d", i)), BasicTransformerBlockConfig{
			Dim: inner, Heads: cfg.Heads, HeadDim: cfg.HeadDim, CrossDim: cfg.CrossDim, AttentionBias: cfg.AttentionBias})
		if err != nil {
			return nil, err
		}
		t.TransformerBlocks = append(t.TransformerBlocks, b)
	}
	if cfg.UseLinearProjection {
		t.ProjOut, err = NewLinear(w.Sub("proj_out"), inner, cfg.InChannels, true)
	} else {
		t.ProjOutConv, err = NewConv2d(w.Sub("proj_out"), inner, cfg.InChannels, 1, 1, 0)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Forward runs the model on x (N×C×H×W) with the text states context (N×M×CrossDim).
func (t *Transformer2DModel) Forward(x, context *gorgonia.Node) (*gorgonia.Node, error) {
	return t.ForwardTaps(x, context, nil)
}

// ForwardTaps is Forward that also passes tap (when not nil) the outputs of the inner modules
// under diffusers' names relative to the model: "norm", "proj_in" (N×C×H×W with convolution
// projections, tokens with linear ones, as diffusers computes it), "transformer_blocks.<i>" and,
// inside each block, "transformer_blocks.<i>.attn1", ".attn2" and ".ff" (see
// BasicTransformerBlock.ForwardTaps).
func (t *Transformer2DModel) ForwardTaps(x, context *gorgonia.Node, tap func(name string, n *gorgonia.Node)) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) != 4 {
		return nil, fmt.Errorf("nn: transformer_2d: input shape %v, want N×C×H×W", xs)
	}
	height, width := xs[2], xs[3]
	residual := x
	h, err := t.Norm.Forward(x)
	if err != nil {
		return nil, err
	}
	if tap != nil {
		tap("norm", h)
	}
	if t.cfg.UseLinearProjection {
		if h, err = ToTokens(h); err == nil {
			h, err = t.ProjIn.Forward(h)
		}
		if err == nil && tap != nil {
			tap("proj_in", h)
		}
	} else {
		if h, err = t.ProjInConv.Forward(h); err == nil {
			if tap != nil {
				tap("proj_in", h)
			}
			h, err = ToTokens(h)
		}
	}
	if err != nil {
		return nil, err
	}
	for i, b := range t.TransformerBlocks {
		if tap == nil {
			h, err = b.Forward(h, context)
		} else {
			name := fmt.Sprintf("transformer_blocks.%d", i)
			if h, err = b.ForwardTaps(h, context, func(sub string, n *gorgonia.Node) { tap(name+"."+sub, n) }); err == nil {
				tap(name, h)
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if t.cfg.UseLinearProjection {
		if h, err = t.ProjOut.Forward(h); err == nil {
			h, err = FromTokens(h, height, width)
		}
	} else {
		if h, err = FromTokens(h, height, width); err == nil {
			h, err = t.ProjOutConv.Forward(h)
		}
	}
	if err != nil {
		return nil, err
	}
	return Add(h, residual)
}

// SpatialAttentionConfig configures the VAE's attention block (diffusers' Attention with
// group_norm and residual_connection, as UNetMidBlock2D builds it).
type SpatialAttentionConfig struct {
	Channels            int
	HeadDim             int     // attention_head_dim; 0 means Channels (one head)
	Groups              int     // resnet_groups; 0 means 32
	Eps                 float32 // resnet_eps; 0 means 1e-6
	RescaleOutputFactor float32 // 0 means 1
	// Names of the projections. The zero value picks DiffusersNames, or LegacyAttentionNames
	// when the checkpoint has query.weight but no to_q.weight (as diffusers renames on load).
	Names AttentionNames
}

// SpatialAttention is group_norm → to_q/to_k/to_v on the H·W tokens → attention → to_out.0,
// added to the input and divided by RescaleOutputFactor.
type SpatialAttention struct {
	GroupNorm *GroupNorm
	Attn      *Attention
	cfg       SpatialAttentionConfig
}

// NewSpatialAttention reads group_norm, to_q, to_k, to_v and to_out.0 (all with biases) under w,
// or query, key, value and proj_attn in checkpoints saved before diffusers 0.14.
func NewSpatialAttention(w weights.View, cfg SpatialAttentionConfig) (*SpatialAttention, error) {
	if cfg.Names == (AttentionNames{}) {
		cfg.Names = DiffusersNames()
		if !w.Has(cfg.Names.Q+".weight") && w.Has(LegacyAttentionNames().Q+".weight") {
			cfg.Names = LegacyAttentionNames()
		}
	}
	if cfg.HeadDim == 0 {
		cfg.HeadDim = cfg.Channels
	}
	if cfg.Groups == 0 {
		cfg.Groups = 32
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-6
	}
	if cfg.RescaleOutputFactor == 0 {
		cfg.RescaleOutputFactor = 1
	}
	if cfg.HeadDim < 1 || cfg.Channels%cfg.HeadDim != 0 {
		return nil, fmt.Errorf("nn: %s: %d channels do not split into heads of %d", w.Prefix(), cfg.Channels, cfg.HeadDim)
	}
	a := &SpatialAttention{cfg: cfg}
	var err error
	if a.GroupNorm, err = NewGroupNorm(w.Sub("group_norm"), cfg.Groups, cfg.Channels, cfg.Eps); err != nil {
		return nil, err
	}
	a.Attn, err = NewAttention(w, AttentionConfig{QueryDim: cfg.Channels, Heads: cfg.Channels / cfg.HeadDim,
		HeadDim: cfg.HeadDim, QKVBias: true, Names: cfg.Names})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Forward runs the block on x (N×C×H×W).
func (a *SpatialAttention) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	xs := x.Shape()
	if len(xs) != 4 {
		return nil, fmt.Errorf("nn: spatial attention: input shape %v, want N×C×H×W", xs)
	}
	h, err := a.GroupNorm.Forward(x)
	if err == nil {
		h, err = ToTokens(h)
	}
	if err == nil {
		h, err = a.Attn.Forward(h, nil)
	}
	if err == nil {
		h, err = FromTokens(h, xs[2], xs[3])
	}
	if err == nil {
		h, err = Add(h, x)
	}
	if err == nil && a.cfg.RescaleOutputFactor != 1 {
		h, err = Scale(h, 1/a.cfg.RescaleOutputFactor)
	}
	return h, err
}
