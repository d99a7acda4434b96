package unet

import (
	"fmt"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
)

// This file mirrors diffusers' unet_2d_blocks.py for the SD 1.x block types:
// CrossAttnDownBlock2D / DownBlock2D, UNetMidBlock2DCrossAttn, CrossAttnUpBlock2D / UpBlock2D.

// tapper records intermediate nodes under diffusers' module paths ("down_blocks.0.resnets.0").
type tapper struct {
	m      map[string]*gorgonia.Node
	prefix string
}

func (t tapper) sub(name string) tapper {
	if t.prefix == "" {
		return tapper{t.m, name}
	}
	return tapper{t.m, t.prefix + "." + name}
}

// put records n as the output of the module name under the prefix ("" records the prefix itself).
func (t tapper) put(name string, n *gorgonia.Node) {
	if t.m == nil || n == nil {
		return
	}
	key := t.sub(name).prefix
	if name == "" {
		key = t.prefix
	}
	if _, ok := t.m[key]; !ok { // a module's first call, as the reference recorded
		t.m[key] = n
	}
}

// blockConfig holds what every block of one UNet level shares.
type blockConfig struct {
	in, out, prevOut int // prevOut: up blocks only
	temb             int
	layers           int // resnets
	transformers     int // BasicTransformerBlocks per attention; 0: no attentions
	heads            int
	crossDim         int
	groups           int
	eps              float32
	linearProj       bool
	outputScale      float32 // mid block resnets
}

func (bc blockConfig) resnet(w weights.View, in, out int) (*nn.ResnetBlock2D, error) {
	return nn.NewResnetBlock2D(w, in, nn.ResnetBlock2DConfig{Out: out, TembChannels: bc.temb, Groups: bc.groups,
		Eps: bc.eps, OutputScaleFactor: bc.outputScale})
}

func (bc blockConfig) attention(w weights.View, channels int) (*nn.Transformer2DModel, error) {
	return nn.NewTransformer2DModel(w, nn.Transformer2DConfig{InChannels: channels, Heads: bc.heads,
		HeadDim: channels / bc.heads, CrossDim: bc.crossDim, Layers: bc.transformers, Groups: bc.groups,
		UseLinearProjection: bc.linearProj})
}

// attend runs a Transformer2DModel, recording its inner modules (norm, proj_in,
// transformer_blocks.<i> with attn1/attn2/ff, as the reference recorded them) and its output.
func attend(t *nn.Transformer2DModel, h, text *gorgonia.Node, tp tapper) (*gorgonia.Node, error) {
	var tap func(string, *gorgonia.Node)
	if tp.m != nil {
		tap = tp.put
	}
	h, err := t.ForwardTaps(h, text, tap)
	if err != nil {
		return nil, err
	}
	tp.put("", h)
	return h, nil
}

// downBlock is CrossAttnDownBlock2D (with Attentions) or DownBlock2D (without).
type downBlock struct {
	Resnets     []*nn.ResnetBlock2D
	Attentions  []*nn.Transformer2DModel
	Downsampler *nn.Downsample2D // nil on the last level
}

func newDownBlock(w weights.View, bc blockConfig, downsample bool, padding int) (*downBlock, error) {
	b := &downBlock{}
	for i := 0; i < bc.layers; i++ {
		in := bc.out
		if i == 0 {
			in = bc.in
		}
		r, err := bc.resnet(w.Sub(fmt.Sprintf("resnets.%d", i)), in, bc.out)
		if err != nil {
			return nil, err
		}
		b.Resnets = append(b.Resnets, r)
		if bc.transformers > 0 {
			a, err := bc.attention(w.Sub(fmt.Sprintf("attentions.%d", i)), bc.out)
			if err != nil {
				return nil, err
			}
			b.Attentions = append(b.Attentions, a)
		}
	}
	if downsample {
		d, err := nn.NewDownsample2D(w.Sub("downsamplers.0"), bc.out, bc.out, padding)
		if err != nil {
			return nil, err
		}
		b.Downsampler = d
	}
	return b, nil
}

// forward returns the block's output and the states it hands to the up path (one per resnet,
// plus the downsampled output).
func (b *downBlock) forward(h, temb, text *gorgonia.Node, tp tapper) (*gorgonia.Node, []*gorgonia.Node, error) {
	var skips []*gorgonia.Node
	var err error
	for i, r := range b.Resnets {
		if h, err = r.Forward(h, temb); err != nil {
			return nil, nil, err
		}
		tp.put(fmt.Sprintf("resnets.%d", i), h)
		if b.Attentions != nil {
			if h, err = attend(b.Attentions[i], h, text, tp.sub(fmt.Sprintf("attentions.%d", i))); err != nil {
				return nil, nil, err
			}
		}
		skips = append(skips, h)
	}
	if b.Downsampler != nil {
		if h, err = b.Downsampler.Forward(h); err != nil {
			return nil, nil, err
		}
		tp.put("downsamplers.0", h)
		skips = append(skips, h)
	}
	return h, skips, nil
}

// midBlock is UNetMidBlock2DCrossAttn: a resnet, then (attention, resnet) pairs.
type midBlock struct {
	Resnets    []*nn.ResnetBlock2D
	Attentions []*nn.Transformer2DModel
}

func newMidBlock(w weights.View, bc blockConfig) (*midBlock, error) {
	b := &midBlock{}
	r, err := bc.resnet(w.Sub("resnets.0"), bc.in, bc.in)
	if err != nil {
		return nil, err
	}
	b.Resnets = append(b.Resnets, r)
	// diffusers' mid block has num_layers = 1 (attention, resnet) pair.
	a, err := bc.attention(w.Sub("attentions.0"), bc.in)
	if err != nil {
		return nil, err
	}
	b.Attentions = append(b.Attentions, a)
	if r, err = bc.resnet(w.Sub("resnets.1"), bc.in, bc.in); err != nil {
		return nil, err
	}
	b.Resnets = append(b.Resnets, r)
	return b, nil
}

func (b *midBlock) forward(h, temb, text *gorgonia.Node, tp tapper) (*gorgonia.Node, error) {
	h, err := b.Resnets[0].Forward(h, temb)
	if err != nil {
		return nil, err
	}
	tp.put("resnets.0", h)
	for i, a := range b.Attentions {
		if h, err = attend(a, h, text, tp.sub(fmt.Sprintf("attentions.%d", i))); err != nil {
			return nil, err
		}
		if h, err = b.Resnets[i+1].Forward(h, temb); err != nil {
			return nil, err
		}
		tp.put(fmt.Sprintf("resnets.%d", i+1), h)
	}
	return h, nil
}

// upBlock is CrossAttnUpBlock2D (with Attentions) or UpBlock2D (without).
type upBlock struct {
	Resnets    []*nn.ResnetBlock2D
	Attentions []*nn.Transformer2DModel
	Upsampler  *nn.Upsample2D // nil on the last level
}

func newUpBlock(w weights.View, bc blockConfig, upsample bool) (*upBlock, error) {
	b := &upBlock{}
	for i := 0; i < bc.layers; i++ {
		skip := bc.out
		if i == bc.layers-1 {
			skip = bc.in
		}
		in := bc.out
		if i == 0 {
			in = bc.prevOut
		}
		r, err := bc.resnet(w.Sub(fmt.Sprintf("resnets.%d", i)), in+skip, bc.out)
		if err != nil {
			return nil, err
		}
		b.Resnets = append(b.Resnets, r)
		if bc.transformers > 0 {
			a, err := bc.attention(w.Sub(fmt.Sprintf("attentions.%d", i)), bc.out)
			if err != nil {
				return nil, err
			}
			b.Attentions = append(b.Attentions, a)
		}
	}
	if upsample {
		u, err := nn.NewUpsample2D(w.Sub("upsamplers.0"), bc.out, bc.out)
		if err != nil {
			return nil, err
		}
		b.Upsampler = u
	}
	return b, nil
}

// forward consumes skips (the last len(Resnets) states of the down path, last one first) and
// upsamples to size (height, width) when given, to twice the size otherwise.
func (b *upBlock) forward(h *gorgonia.Node, skips []*gorgonia.Node, temb, text *gorgonia.Node, size []int, tp tapper) (*gorgonia.Node, error) {
	var err error
	for i, r := range b.Resnets {
		skip := skips[len(skips)-1-i]
		if h, err = nn.Concat(h, skip); err != nil {
			return nil, err
		}
		if h, err = r.Forward(h, temb); err != nil {
			return nil, err
		}
		tp.put(fmt.Sprintf("resnets.%d", i), h)
		if b.Attentions != nil {
			if h, err = attend(b.Attentions[i], h, text, tp.sub(fmt.Sprintf("attentions.%d", i))); err != nil {
				return nil, err
			}
		}
	}
	if b.Upsampler != nil {
		if size != nil {
			h, err = b.Upsampler.ForwardSize(h, size[0], size[1])
		} else {
			h, err = b.Upsampler.Forward(h)
		}
		if err != nil {
			return nil, err
		}
		tp.put("upsamplers.0", h)
	}
	return h, nil
}
