package vae

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/torchrand"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Encoder is AutoencoderKL's encoding half: diffusers' Encoder (conv_in, down blocks, mid block,
// GroupNorm + SiLU, conv_out to 2·latent_channels) followed by quant_conv. Its output is the
// latent distribution (LatentDist). Fields are named as the checkpoint names the modules. An
// Encoder is safe for concurrent use (calls with the same image size take turns), and Close
// waits for the calls in flight.
type Encoder struct {
	ConvIn      *nn.Conv2d
	DownBlocks  []*DownEncoderBlock2D
	MidBlock    *UNetMidBlock2D
	ConvNormOut *nn.GroupNorm
	ConvOut     *nn.Conv2d
	QuantConv   *nn.Conv2d

	part // config, runner (programs per image size H×W, batch 1), weights file
}

// NewEncoder builds the encoder from cfg and the AutoencoderKL weights under w (names such as
// "encoder.conv_in.weight" and "quant_conv.weight"; the decoder's are not read).
func NewEncoder(cfg Config, w weights.View) (*Encoder, error) {
	if err := cfg.validateEncoder(); err != nil {
		return nil, fmt.Errorf("vae: config: %w", err)
	}
	e := &Encoder{part: part{cfg: cfg}}
	e.runner = nn.NewRunner("vae encoder", func(shapes ...tensor.Shape) (*nn.Program, error) {
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(shapes[0]...), gorgonia.WithName("images"))
		y, err := e.Forward(x)
		if err != nil {
			return nil, err
		}
		return nn.Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{y})
	})
	var err error
	lat, groups, boc := cfg.LatentChannels, cfg.NormNumGroups, cfg.BlockOutChannels
	ew := w.Sub("encoder")
	if e.ConvIn, err = nn.NewConv2d(ew.Sub("conv_in"), cfg.InChannels, boc[0], 3, 1, 1); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	out := boc[0]
	for i := range cfg.DownBlockTypes {
		in := out
		out = boc[i]
		b, err := NewDownEncoderBlock2D(ew.Sub(fmt.Sprintf("down_blocks.%d", i)), in, out, cfg.LayersPerBlock, groups, i != len(boc)-1)
		if err != nil {
			return nil, fmt.Errorf("vae: %w", err)
		}
		e.DownBlocks = append(e.DownBlocks, b)
	}
	top := boc[len(boc)-1]
	if e.MidBlock, err = NewUNetMidBlock2D(ew.Sub("mid_block"), top, groups); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	if e.ConvNormOut, err = nn.NewGroupNorm(ew.Sub("conv_norm_out"), groups, top, decoderResnetEps); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	if e.ConvOut, err = nn.NewConv2d(ew.Sub("conv_out"), top, 2*lat, 3, 1, 1); err != nil { // double_z
		return nil, fmt.Errorf("vae: %w", err)
	}
	if e.QuantConv, err = nn.NewConv2d(w.Sub("quant_conv"), 2*lat, 2*lat, 1, 1, 0); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	return e, nil
}

// LoadEncoder reads dir/config.json and the weights in dir (a model's vae folder) and builds the
// encoder. The weights file stays open (memory-mapped) until Close.
func LoadEncoder(dir string, opts ...weights.Option) (*Encoder, error) {
	return load(dir, opts, NewEncoder)
}

// validateEncoder adds the encoder's own requirements to Validate's.
func (c Config) validateEncoder() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if len(c.DownBlockTypes) != len(c.BlockOutChannels) {
		return fmt.Errorf("down_block_types has %d entries, block_out_channels %d: they must match", len(c.DownBlockTypes), len(c.BlockOutChannels))
	}
	for i, t := range c.DownBlockTypes {
		if t != "DownEncoderBlock2D" {
			return fmt.Errorf("down_block_types[%d] = %q: only DownEncoderBlock2D is supported", i, t)
		}
	}
	if c.LayersPerBlock < 1 {
		return fmt.Errorf("layers_per_block = %d, want ≥ 1 for the encoder", c.LayersPerBlock)
	}
	if c.InChannels < 1 {
		return fmt.Errorf("in_channels = %d, want ≥ 1", c.InChannels)
	}
	return nil
}

// Forward adds the encoder and quant_conv to x's graph: x (N×in_channels×H×W, values in
// [-1, 1]) → the moments N×(2·latent_channels)×(H/f)×(W/f), mean first, then log-variance
// (f = Config().UpscaleFactor()).
func (e *Encoder) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	if s := x.Shape(); len(s) != 4 || s[1] != e.cfg.InChannels {
		return nil, fmt.Errorf("vae: images of shape %v, want N×%d×H×W", s, e.cfg.InChannels)
	}
	h, err := e.ConvIn.Forward(x)
	if err != nil {
		return nil, err
	}
	for _, b := range e.DownBlocks {
		if h, err = b.Forward(h); err != nil {
			return nil, err
		}
	}
	if h, err = e.MidBlock.Forward(h); err != nil {
		return nil, err
	}
	if h, err = e.ConvNormOut.ForwardSiLU(h); err != nil {
		return nil, err
	}
	if h, err = e.ConvOut.Forward(h); err != nil {
		return nil, err
	}
	return e.QuantConv.Forward(h)
}

// LatentDist is the diagonal Gaussian the encoder returns (diffusers'
// DiagonalGaussianDistribution): per latent value a mean and a standard deviation
// std = exp(logvar/2), the log-variance clamped to [-30, 20]. Mean and Std are NCHW of shape
// Shape. The latents the pipelines use are ScalingFactor × Sample.
type LatentDist struct {
	Mean, Std []float32
	Shape     [4]int
}

// Sample draws mean + std·ε with ε = torch.randn(Shape, generator=g), as diffusers'
// latent_dist.sample(generator) does, in float32. It draws len(Mean) values from g.
func (d *LatentDist) Sample(g *torchrand.Generator) []float32 {
	eps := g.Randn(d.Shape[:]...)
	out := make([]float32, len(d.Mean))
	for i, m := range d.Mean {
		out[i] = m + float32(d.Std[i]*eps[i]) // the conversion keeps Go from fusing: torch rounds twice
	}
	return out
}

// Encode turns images (N×in_channels×H×W float32 in [-1, 1], H and W multiples of
// UpscaleFactor) into their latent distribution, N×latent_channels×(H/f)×(W/f). Samples are
// encoded one at a time through one compiled program per image size, kept for reuse within the
// SetCacheLimit budget.
func (e *Encoder) Encode(ctx context.Context, images *tensor.Dense) (*LatentDist, error) {
	n, hh, ww, data, err := e.checkImages(images)
	if err != nil {
		return nil, err
	}
	f, lat, c := e.cfg.UpscaleFactor(), e.cfg.LatentChannels, e.cfg.InChannels
	h, w := hh/f, ww/f
	per := lat * h * w
	d := &LatentDist{Mean: make([]float32, n*per), Std: make([]float32, n*per), Shape: [4]int{n, lat, h, w}}
	moments := make([]float32, 2*per)
	in := c * hh * ww
	for i := 0; i < n; i++ {
		x := tensor.New(tensor.WithShape(1, c, hh, ww), tensor.WithBacking(data[i*in:(i+1)*in]))
		err := e.runner.RunFunc(ctx, func(outs []*tensor.Dense) error {
			copy(moments, outs[0].Float32s()[:len(moments)])
			return nil
		}, x)
		if err != nil {
			return nil, err
		}
		copy(d.Mean[i*per:], moments[:per])
		for k, lv := range moments[per:] {
			lv = min(max(lv, -30), 20)
			d.Std[i*per+k] = float32(math.Exp(float64(float32(0.5 * lv))))
		}
	}
	return d, nil
}

// BufferBytes returns the bytes of working buffers one image's encode at size H×W needs
// (weights not counted), compiling its program (kept for the Encode that follows) without
// allocating them.
func (e *Encoder) BufferBytes(hh, ww int) (int64, error) {
	p, err := e.runner.Program(tensor.Shape{1, e.cfg.InChannels, hh, ww})
	if err != nil {
		return 0, err
	}
	return p.BufferBytes(), nil
}

// PeakBytes returns the memory the intermediate values of one image's encode at size H×W
// need at once (weights and kernel workspaces not counted), compiling its program.
func (e *Encoder) PeakBytes(hh, ww int) (int64, error) {
	x := tensor.New(tensor.WithShape(1, e.cfg.InChannels, hh, ww), tensor.WithBacking(make([]float32, e.cfg.InChannels*hh*ww)))
	if _, _, _, _, err := e.checkImages(x); err != nil {
		return 0, err
	}
	p, err := e.runner.Program(x.Shape())
	if err != nil {
		return 0, err
	}
	return p.PeakBytes(), nil
}

// checkImages validates images and returns their size and contiguous data.
func (e *Encoder) checkImages(images *tensor.Dense) (n, h, w int, data []float32, err error) {
	if images == nil {
		return 0, 0, 0, nil, errors.New("vae: nil images")
	}
	if images.Dtype() != tensor.Float32 {
		return 0, 0, 0, nil, fmt.Errorf("vae: images are %v, want float32", images.Dtype())
	}
	s, f := images.Shape(), e.cfg.UpscaleFactor()
	if len(s) != 4 || s[1] != e.cfg.InChannels || s[0] < 1 {
		return 0, 0, 0, nil, fmt.Errorf("vae: images of shape %v, want N×%d×H×W", s, e.cfg.InChannels)
	}
	if s[2] < f || s[3] < f || s[2]%f != 0 || s[3]%f != 0 {
		return 0, 0, 0, nil, fmt.Errorf("vae: images of %d×%d pixels (H×W): both must be positive multiples of %d", s[2], s[3], f)
	}
	if images.IsView() || !images.IsNativelyAccessible() {
		m, ok := images.Materialize().(*tensor.Dense)
		if !ok {
			return 0, 0, 0, nil, errors.New("vae: cannot read the images' data")
		}
		images = m
	}
	return s[0], s[2], s[3], images.Float32s()[:images.Size()], nil
}

// DownEncoderBlock2D is diffusers' DownEncoderBlock2D: resnets (the first changing the width),
// then a stride-2 convolution (padded on the right and bottom only) unless it is the last block.
type DownEncoderBlock2D struct {
	Resnets      []*nn.ResnetBlock2D
	Downsamplers []*nn.Downsample2D // empty for the last block
}

// NewDownEncoderBlock2D reads resnets.0…numLayers-1 and, with downsample, downsamplers.0
// under w.
func NewDownEncoderBlock2D(w weights.View, in, out, numLayers, groups int, downsample bool) (*DownEncoderBlock2D, error) {
	resnets, err := newResnets(w, in, out, numLayers, groups)
	if err != nil {
		return nil, err
	}
	b := &DownEncoderBlock2D{Resnets: resnets}
	if downsample {
		d, err := nn.NewDownsample2D(w.Sub("downsamplers.0"), out, out, 0)
		if err != nil {
			return nil, err
		}
		b.Downsamplers = []*nn.Downsample2D{d}
	}
	return b, nil
}

// Forward runs the block on x (N×in×H×W).
func (b *DownEncoderBlock2D) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	var err error
	for _, r := range b.Resnets {
		if x, err = r.Forward(x, nil); err != nil {
			return nil, err
		}
	}
	for _, d := range b.Downsamplers {
		if x, err = d.Forward(x); err != nil {
			return nil, err
		}
	}
	return x, nil
}
