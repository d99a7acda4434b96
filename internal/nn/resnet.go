package nn

import (
	"fmt"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
)

// ResnetBlock2DConfig configures diffusers' ResnetBlock2D (time_embedding_norm "default", no
// up/down sampling inside the block, SiLU).
type ResnetBlock2DConfig struct {
	Out               int     // out_channels; 0 means the input channels
	TembChannels      int     // temb_channels; 0 for no time embedding (the VAE)
	Groups            int     // groups; 0 means 32
	GroupsOut         int     // groups_out; 0 means Groups
	Eps               float32 // eps; 0 means 1e-6
	OutputScaleFactor float32 // output_scale_factor; 0 means 1
	ConvShortcut      bool    // use_conv_shortcut: a 3×3 shortcut instead of 1×1 when in ≠ out
}

// ResnetBlock2D is norm1 → SiLU → conv1 (+ time_emb_proj(SiLU(temb)) per channel) → norm2 →
// SiLU → conv2, added to the input (through conv_shortcut when the width changes) and divided
// by the output scale factor.
type ResnetBlock2D struct {
	Norm1, Norm2 *GroupNorm
	Conv1, Conv2 *Conv2d
	TimeEmbProj  *Linear // nil without a time embedding
	ConvShortcut *Conv2d // nil when in = out
	scale        float32
}

// NewResnetBlock2D reads norm1, conv1, time_emb_proj, norm2, conv2 and conv_shortcut under w for a
// block taking in channels.
func NewResnetBlock2D(w weights.View, in int, cfg ResnetBlock2DConfig) (*ResnetBlock2D, error) {
	out := cfg.Out
	if out == 0 {
		out = in
	}
	if cfg.Groups == 0 {
		cfg.Groups = 32
	}
	if cfg.GroupsOut == 0 {
		cfg.GroupsOut = cfg.Groups
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-6
	}
	if cfg.OutputScaleFactor == 0 {
		cfg.OutputScaleFactor = 1
	}
	r := &ResnetBlock2D{scale: cfg.OutputScaleFactor}
	var err error
	if r.Norm1, err = NewGroupNorm(w.Sub("norm1"), cfg.Groups, in, cfg.Eps); err != nil {
		return nil, err
	}
	if r.Conv1, err = NewConv2d(w.Sub("conv1"), in, out, 3, 1, 1); err != nil {
		return nil, err
	}
	if cfg.TembChannels > 0 {
		if r.TimeEmbProj, err = NewLinear(w.Sub("time_emb_proj"), cfg.TembChannels, out, true); err != nil {
			return nil, err
		}
	}
	if r.Norm2, err = NewGroupNorm(w.Sub("norm2"), cfg.GroupsOut, out, cfg.Eps); err != nil {
		return nil, err
	}
	if r.Conv2, err = NewConv2d(w.Sub("conv2"), out, out, 3, 1, 1); err != nil {
		return nil, err
	}
	if in != out {
		k, pad := 1, 0
		if cfg.ConvShortcut {
			k, pad = 3, 1
		}
		if r.ConvShortcut, err = NewConv2d(w.Sub("conv_shortcut"), in, out, k, 1, pad); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Forward runs the block on x (N×in×H×W) with temb (N×TembChannels, nil without one).
func (r *ResnetBlock2D) Forward(x, temb *gorgonia.Node) (*gorgonia.Node, error) {
	return r.forward(x, temb, false)
}

// ForwardBanded is Forward with both 3×3 convolutions computed in bands of rows
// (Conv2d.ForwardBanded), each writing over its normalised input: the same values, bit for bit,
// with one fewer full-size tensor alive during each convolution.
func (r *ResnetBlock2D) ForwardBanded(x, temb *gorgonia.Node) (*gorgonia.Node, error) {
	return r.forward(x, temb, true)
}

// normConv is conv(silu(norm(x))), banded with the normalisation fused into the bands' gathering
// when banded.
func normConv(norm *GroupNorm, conv *Conv2d, x *gorgonia.Node, banded bool) (*gorgonia.Node, error) {
	if banded {
		return conv.ForwardBandedNormSiLU(x, norm)
	}
	h, err := norm.ForwardSiLU(x)
	if err != nil {
		return nil, err
	}
	return conv.Forward(h)
}

func (r *ResnetBlock2D) forward(x, temb *gorgonia.Node, banded bool) (*gorgonia.Node, error) {
	if (temb == nil) != (r.TimeEmbProj == nil) {
		return nil, fmt.Errorf("nn: resnet block built with time embedding %v, given one %v", r.TimeEmbProj != nil, temb != nil)
	}
	// The shortcut goes first so that x's last read is norm1 (banded: conv1, which normalises as
	// it reads), which can then reuse x's buffer; computed last, the shortcut kept x alive beside
	// norm1(x) and conv1's output.
	shortcut := x
	var err error
	if r.ConvShortcut != nil {
		if shortcut, err = r.ConvShortcut.Forward(x); err != nil {
			return nil, err
		}
	}
	h, err := normConv(r.Norm1, r.Conv1, x, banded)
	if err == nil && temb != nil {
		var t *gorgonia.Node
		if t, err = SiLU(temb); err == nil {
			t, err = r.TimeEmbProj.Forward(t)
		}
		if err == nil {
			h, err = AddChannelBias(h, t)
		}
	}
	if err == nil {
		h, err = normConv(r.Norm2, r.Conv2, h, banded) // dropout is the identity at inference
	}
	if err == nil {
		h, err = Add(shortcut, h)
	}
	if err == nil && r.scale != 1 {
		h, err = Scale(h, 1/r.scale)
	}
	return h, err
}

// Downsample2D is diffusers' Downsample2D with use_conv: a 3×3 convolution of stride 2 named
// "conv". Padding 0 pads the right and bottom by one first, as diffusers does.
type Downsample2D struct {
	Conv    *Conv2d
	padding int
}

// NewDownsample2D reads conv under w.
func NewDownsample2D(w weights.View, channels, out, padding int) (*Downsample2D, error) {
	if out == 0 {
		out = channels
	}
	c, err := NewConv2d(w.Sub("conv"), channels, out, 3, 2, padding)
	if err != nil {
		return nil, err
	}
	return &Downsample2D{Conv: c, padding: padding}, nil
}

// Forward halves the spatial size of x (N×C×H×W).
func (d *Downsample2D) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	if d.padding == 0 {
		var err error
		if x, err = Pad2D(x, 0, 1, 0, 1); err != nil {
			return nil, err
		}
	}
	return d.Conv.Forward(x)
}

// Upsample2D is diffusers' Upsample2D with use_conv: nearest ×2 then a 3×3 convolution "conv".
type Upsample2D struct {
	Conv *Conv2d
}

// NewUpsample2D reads conv under w.
func NewUpsample2D(w weights.View, channels, out int) (*Upsample2D, error) {
	if out == 0 {
		out = channels
	}
	c, err := NewConv2d(w.Sub("conv"), channels, out, 3, 1, 1)
	if err != nil {
		return nil, err
	}
	return &Upsample2D{Conv: c}, nil
}

// Forward doubles the spatial size of x (N×C×H×W).
func (u *Upsample2D) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	h, err := Upsample2x(x)
	if err != nil {
		return nil, err
	}
	return u.Conv.Forward(h)
}

// ForwardSize resizes x to h×w (nearest) before the convolution: diffusers' upsample_size path,
// used by the UNet when a skip connection's size is not twice the input's.
func (u *Upsample2D) ForwardSize(x *gorgonia.Node, h, w int) (*gorgonia.Node, error) {
	r, err := ResizeNearest(x, h, w)
	if err != nil {
		return nil, err
	}
	return u.Conv.Forward(r)
}
