package vae

import (
	"fmt"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
)

// recorder collects module outputs by their diffusers path (for taps); nil records nothing.
type recorder map[string]*gorgonia.Node

func (r recorder) add(path string, n *gorgonia.Node) {
	if r != nil {
		r[path] = n
	}
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// decoderResnetEps is the eps diffusers' Decoder passes to every resnet, attention and norm.
const decoderResnetEps = 1e-6

// UNetMidBlock2D is diffusers' UNetMidBlock2D as the VAE uses it: resnet, single-head spatial
// attention, resnet, no time embedding.
type UNetMidBlock2D struct {
	Resnets    []*nn.ResnetBlock2D
	Attentions []*nn.SpatialAttention
}

// NewUNetMidBlock2D reads resnets.0, attentions.0 and resnets.1 under w.
func NewUNetMidBlock2D(w weights.View, channels, groups int) (*UNetMidBlock2D, error) {
	m := &UNetMidBlock2D{}
	rc := nn.ResnetBlock2DConfig{Groups: groups, Eps: decoderResnetEps}
	for i := 0; i < 2; i++ {
		r, err := nn.NewResnetBlock2D(w.Sub(fmt.Sprintf("resnets.%d", i)), channels, rc)
		if err != nil {
			return nil, err
		}
		m.Resnets = append(m.Resnets, r)
	}
	// attention_head_dim = channels (one head). Checkpoints saved before diffusers 0.14 name the
	// projections query/key/value/proj_attn; nn detects and accepts those, as diffusers does.
	a, err := nn.NewSpatialAttention(w.Sub("attentions.0"),
		nn.SpatialAttentionConfig{Channels: channels, Groups: groups, Eps: decoderResnetEps})
	if err != nil {
		return nil, err
	}
	m.Attentions = []*nn.SpatialAttention{a}
	return m, nil
}

// Forward runs the block on x (N×C×H×W).
func (m *UNetMidBlock2D) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	return m.forward(x, nil, "")
}

func (m *UNetMidBlock2D) forward(x *gorgonia.Node, rec recorder, path string) (*gorgonia.Node, error) {
	h, err := m.Resnets[0].Forward(x, nil)
	if err != nil {
		return nil, err
	}
	rec.add(join(path, "resnets.0"), h)
	for i, a := range m.Attentions {
		if h, err = a.Forward(h); err != nil {
			return nil, err
		}
		rec.add(join(path, fmt.Sprintf("attentions.%d", i)), h)
		if h, err = m.Resnets[i+1].Forward(h, nil); err != nil {
			return nil, err
		}
		rec.add(join(path, fmt.Sprintf("resnets.%d", i+1)), h)
	}
	rec.add(path, h)
	return h, nil
}

// UpDecoderBlock2D is diffusers' UpDecoderBlock2D: resnets (the first changing the width), then
// nearest ×2 upsampling and a convolution unless it is the last block.
type UpDecoderBlock2D struct {
	Resnets    []*nn.ResnetBlock2D
	Upsamplers []*nn.Upsample2D // empty for the last block
}

// NewUpDecoderBlock2D reads resnets.0…numLayers-1 and, with upsample, upsamplers.0 under w.
func NewUpDecoderBlock2D(w weights.View, in, out, numLayers, groups int, upsample bool) (*UpDecoderBlock2D, error) {
	resnets, err := newResnets(w, in, out, numLayers, groups)
	if err != nil {
		return nil, err
	}
	b := &UpDecoderBlock2D{Resnets: resnets}
	if upsample {
		u, err := nn.NewUpsample2D(w.Sub("upsamplers.0"), out, out)
		if err != nil {
			return nil, err
		}
		b.Upsamplers = []*nn.Upsample2D{u}
	}
	return b, nil
}

// Forward runs the block on x (N×in×H×W).
func (b *UpDecoderBlock2D) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	return b.forward(x, nil, "")
}

func (b *UpDecoderBlock2D) forward(x *gorgonia.Node, rec recorder, path string) (*gorgonia.Node, error) {
	var err error
	for i, r := range b.Resnets {
		if x, err = r.ForwardBanded(x, nil); err != nil {
			return nil, err
		}
		rec.add(join(path, fmt.Sprintf("resnets.%d", i)), x)
	}
	for i, u := range b.Upsamplers {
		if x, err = u.ForwardBanded(x); err != nil {
			return nil, err
		}
		rec.add(join(path, fmt.Sprintf("upsamplers.%d", i)), x)
	}
	rec.add(path, x)
	return x, nil
}

// newResnets reads resnets.0…numLayers-1 under w, the first changing the width from in to out:
// the resnet stack of diffusers' UpDecoderBlock2D and DownEncoderBlock2D.
func newResnets(w weights.View, in, out, numLayers, groups int) ([]*nn.ResnetBlock2D, error) {
	var rs []*nn.ResnetBlock2D
	for i := 0; i < numLayers; i++ {
		c := out
		if i == 0 {
			c = in
		}
		r, err := nn.NewResnetBlock2D(w.Sub(fmt.Sprintf("resnets.%d", i)), c,
			nn.ResnetBlock2DConfig{Out: out, Groups: groups, Eps: decoderResnetEps})
		if err != nil {
			return nil, err
		}
		rs = append(rs, r)
	}
	return rs, nil
}
