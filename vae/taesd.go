package vae

import (
	"context"
	"errors"
	"fmt"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TinyConfig is an AutoencoderTiny (TAESD) config.json, diffusers' keys.
type TinyConfig struct {
	ClassName               string  `json:"_class_name"` // "AutoencoderTiny"
	InChannels              int     `json:"in_channels"`
	OutChannels             int     `json:"out_channels"`
	EncoderBlockOutChannels []int   `json:"encoder_block_out_channels"`
	DecoderBlockOutChannels []int   `json:"decoder_block_out_channels"`
	ActFn                   string  `json:"act_fn"`
	LatentChannels          int     `json:"latent_channels"`
	UpsamplingScalingFactor int     `json:"upsampling_scaling_factor"`
	NumEncoderBlocks        []int   `json:"num_encoder_blocks"`
	NumDecoderBlocks        []int   `json:"num_decoder_blocks"`
	LatentMagnitude         float64 `json:"latent_magnitude"`
	LatentShift             float64 `json:"latent_shift"`
	ForceUpcast             bool    `json:"force_upcast"`
	// ScalingFactor is 1.0 for TAESD: its latents are the diffusion latents as they are.
	ScalingFactor float64 `json:"scaling_factor"`
}

// DefaultTinyConfig returns AutoencoderTiny's defaults in diffusers v0.21.4, which are also the
// configuration of madebyollin/taesd (TAESD for SD 1.x and 2.x).
func DefaultTinyConfig() TinyConfig {
	return TinyConfig{
		InChannels: 3, OutChannels: 3,
		EncoderBlockOutChannels: []int{64, 64, 64, 64}, DecoderBlockOutChannels: []int{64, 64, 64, 64},
		ActFn: "relu", LatentChannels: 4, UpsamplingScalingFactor: 2,
		NumEncoderBlocks: []int{1, 3, 3, 3}, NumDecoderBlocks: []int{3, 3, 3, 1},
		LatentMagnitude: 3, LatentShift: 0.5, ScalingFactor: 1,
	}
}

// LoadTinyConfig reads an AutoencoderTiny config.json (path is the file or its folder); absent
// keys take diffusers' defaults. Values the model cannot be built with are errors naming the key.
func LoadTinyConfig(path string) (TinyConfig, error) {
	cfg := DefaultTinyConfig()
	if err := weights.ReadConfig(path, &cfg); err != nil {
		return TinyConfig{}, fmt.Errorf("vae: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return TinyConfig{}, fmt.Errorf("vae: %s: %w", path, err)
	}
	return cfg, nil
}

// Validate reports the first value the model cannot be built with, naming its key.
func (c TinyConfig) Validate() error {
	switch {
	case c.ClassName != "" && c.ClassName != "AutoencoderTiny":
		return fmt.Errorf("_class_name = %q: want AutoencoderTiny", c.ClassName)
	case c.ActFn != "relu":
		return fmt.Errorf("act_fn = %q: only \"relu\" (TAESD's) is supported", c.ActFn)
	case c.UpsamplingScalingFactor != 2:
		return fmt.Errorf("upsampling_scaling_factor = %d: only 2 is supported", c.UpsamplingScalingFactor)
	case c.InChannels < 1 || c.OutChannels < 1 || c.LatentChannels < 1:
		return fmt.Errorf("in_channels, out_channels, latent_channels = %d, %d, %d: want ≥ 1", c.InChannels, c.OutChannels, c.LatentChannels)
	case len(c.NumEncoderBlocks) == 0 || len(c.NumEncoderBlocks) != len(c.EncoderBlockOutChannels):
		return fmt.Errorf("num_encoder_blocks has %d entries, encoder_block_out_channels %d: they must match and not be empty",
			len(c.NumEncoderBlocks), len(c.EncoderBlockOutChannels))
	case len(c.NumDecoderBlocks) == 0 || len(c.NumDecoderBlocks) != len(c.DecoderBlockOutChannels):
		return fmt.Errorf("num_decoder_blocks has %d entries, decoder_block_out_channels %d: they must match and not be empty",
			len(c.NumDecoderBlocks), len(c.DecoderBlockOutChannels))
	case !(c.ScalingFactor > 0):
		return fmt.Errorf("scaling_factor = %v, want > 0", c.ScalingFactor)
	case !(c.LatentMagnitude > 0):
		return fmt.Errorf("latent_magnitude = %v, want > 0", c.LatentMagnitude)
	}
	for i, n := range c.NumEncoderBlocks {
		if n < 0 || c.EncoderBlockOutChannels[i] < 1 {
			return fmt.Errorf("num_encoder_blocks[%d] = %d, encoder_block_out_channels[%d] = %d: want ≥ 0 and ≥ 1", i, n, i, c.EncoderBlockOutChannels[i])
		}
	}
	for i, n := range c.NumDecoderBlocks {
		if n < 0 || c.DecoderBlockOutChannels[i] < 1 {
			return fmt.Errorf("num_decoder_blocks[%d] = %d, decoder_block_out_channels[%d] = %d: want ≥ 0 and ≥ 1", i, n, i, c.DecoderBlockOutChannels[i])
		}
	}
	return nil
}

// UpscaleFactor is how much the decoder enlarges each side: 2^(stages−1), 8 for TAESD.
func (c TinyConfig) UpscaleFactor() int { return 1 << (len(c.NumDecoderBlocks) - 1) }

// DownscaleFactor is how much the encoder shrinks each side: 2^(stages−1), 8 for TAESD.
func (c TinyConfig) DownscaleFactor() int { return 1 << (len(c.NumEncoderBlocks) - 1) }

// TinyBlock is diffusers' AutoencoderTinyBlock: ReLU(conv(ReLU(conv(ReLU(conv(x))))) + skip(x)),
// the convolutions 3×3 with bias (conv.0, conv.2, conv.4), skip a 1×1 convolution without bias
// when the widths differ, else the identity.
type TinyBlock struct {
	Conv [3]*nn.Conv2d
	Skip *nn.Conv2d // nil: identity
}

// NewTinyBlock reads a block's weights under w (conv.0.weight, …, skip.weight).
func NewTinyBlock(w weights.View, in, out int) (*TinyBlock, error) {
	b := &TinyBlock{}
	var err error
	for i, c := range []int{in, out, out} {
		if b.Conv[i], err = nn.NewConv2d(w.Sub(fmt.Sprintf("conv.%d", 2*i)), c, out, 3, 1, 1); err != nil {
			return nil, err
		}
	}
	if in != out {
		if b.Skip, err = nn.NewConv2dNoBias(w.Sub("skip"), in, out, 1, 1, 0); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// Forward applies the block to x (N×in×H×W).
func (b *TinyBlock) Forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	h := x
	var err error
	for i, c := range b.Conv {
		if h, err = c.Forward(h); err != nil {
			return nil, err
		}
		if i < 2 {
			if h, err = nn.ReLU(h); err != nil {
				return nil, err
			}
		}
	}
	skip := x
	if b.Skip != nil {
		if skip, err = b.Skip.Forward(x); err != nil {
			return nil, err
		}
	}
	return nn.AddReLU(h, skip)
}

// tinyLayer is one entry of EncoderTiny's or DecoderTiny's nn.Sequential.
type tinyLayer struct {
	conv     *nn.Conv2d
	block    *TinyBlock
	relu, up bool
}

func (l tinyLayer) forward(x *gorgonia.Node) (*gorgonia.Node, error) {
	switch {
	case l.conv != nil:
		return l.conv.Forward(x)
	case l.block != nil:
		return l.block.Forward(x)
	case l.relu:
		return nn.ReLU(x)
	default:
		return nn.Upsample2x(x)
	}
}

func forwardAll(layers []tinyLayer, x *gorgonia.Node) (*gorgonia.Node, error) {
	var err error
	for _, l := range layers {
		if x, err = l.forward(x); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// Tiny is diffusers' AutoencoderTiny: TAESD, a distilled VAE of 2.4M parameters that decodes
// SD latents with about 18 times less arithmetic than AutoencoderKL (141 against 2515 GFLOP for
// a 512×512 image), at some cost in detail. Its latents are the diffusion latents as they are
// (scaling_factor 1). A Tiny is safe for concurrent use.
//
// EncoderTiny (encoder.layers.N): conv 3×3 (in → c), blocks, then per further stage a stride-2
// conv 3×3 without bias and that stage's blocks, and a conv 3×3 to latent_channels, applied to
// (x + 1)/2. DecoderTiny (decoder.layers.N): tanh(z/3)·3, conv 3×3 (latent → c), ReLU, then per
// stage its blocks and, except after the last, ×2 nearest upsampling and a conv 3×3 without
// bias, and a conv 3×3 to out_channels with bias; the output is 2x − 1.
type Tiny struct {
	encoder, decoder []tinyLayer

	cfg      TinyConfig
	store    *weights.Store // closed by Close when LoadTiny opened it
	dec, enc *nn.Runner     // programs per input size, batch 1
}

// NewTiny builds TAESD from cfg and the weights under w ("encoder.layers.0.weight", …,
// "decoder.layers.18.bias" for the real model).
func NewTiny(cfg TinyConfig, w weights.View) (*Tiny, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vae: config: %w", err)
	}
	t := &Tiny{cfg: cfg}
	t.dec = nn.NewRunner("vae: TAESD decoder", t.builder(t.ForwardDecoder))
	t.enc = nn.NewRunner("vae: TAESD encoder", t.builder(t.ForwardEncoder))
	var err error
	if t.encoder, err = newEncoderTiny(cfg, w.Sub("encoder.layers")); err != nil {
		return nil, fmt.Errorf("vae: TAESD encoder: %w", err)
	}
	if t.decoder, err = newDecoderTiny(cfg, w.Sub("decoder.layers")); err != nil {
		return nil, fmt.Errorf("vae: TAESD decoder: %w", err)
	}
	return t, nil
}

// layerBuilder numbers the layers of an nn.Sequential as it grows.
type layerBuilder struct {
	w      weights.View
	layers []tinyLayer
}

func (b *layerBuilder) sub() weights.View { return b.w.Sub(fmt.Sprint(len(b.layers))) }

func (b *layerBuilder) conv(in, out int, stride int, bias bool) error {
	var c *nn.Conv2d
	var err error
	if bias {
		c, err = nn.NewConv2d(b.sub(), in, out, 3, stride, 1)
	} else {
		c, err = nn.NewConv2dNoBias(b.sub(), in, out, 3, stride, 1)
	}
	b.layers = append(b.layers, tinyLayer{conv: c})
	return err
}

func (b *layerBuilder) blocks(n, ch int) error {
	for range n {
		blk, err := NewTinyBlock(b.sub(), ch, ch)
		if err != nil {
			return err
		}
		b.layers = append(b.layers, tinyLayer{block: blk})
	}
	return nil
}

func (b *layerBuilder) add(l tinyLayer) { b.layers = append(b.layers, l) }

func newEncoderTiny(cfg TinyConfig, w weights.View) ([]tinyLayer, error) {
	b := &layerBuilder{w: w}
	for i, n := range cfg.NumEncoderBlocks {
		ch := cfg.EncoderBlockOutChannels[i]
		var err error
		if i == 0 {
			err = b.conv(cfg.InChannels, ch, 1, true)
		} else {
			err = b.conv(ch, ch, 2, false)
		}
		if err == nil {
			err = b.blocks(n, ch)
		}
		if err != nil {
			return nil, err
		}
	}
	last := cfg.EncoderBlockOutChannels[len(cfg.EncoderBlockOutChannels)-1]
	if err := b.conv(last, cfg.LatentChannels, 1, true); err != nil {
		return nil, err
	}
	return b.layers, nil
}

func newDecoderTiny(cfg TinyConfig, w weights.View) ([]tinyLayer, error) {
	b := &layerBuilder{w: w}
	boc := cfg.DecoderBlockOutChannels
	if err := b.conv(cfg.LatentChannels, boc[0], 1, true); err != nil {
		return nil, err
	}
	b.add(tinyLayer{relu: true})
	for i, n := range cfg.NumDecoderBlocks {
		final := i == len(cfg.NumDecoderBlocks)-1
		ch := boc[i]
		if err := b.blocks(n, ch); err != nil {
			return nil, err
		}
		if !final {
			b.add(tinyLayer{up: true})
		}
		out := ch
		if final {
			out = cfg.OutChannels
		}
		if err := b.conv(ch, out, 1, final); err != nil {
			return nil, err
		}
	}
	return b.layers, nil
}

// LoadTiny reads dir/config.json (an AutoencoderTiny's) and the weights in dir, e.g. a download of
// madebyollin/taesd. The weights file stays open (memory-mapped) until Close.
func LoadTiny(dir string, opts ...weights.Option) (*Tiny, error) {
	cfg, err := LoadTinyConfig(dir)
	if err != nil {
		return nil, err
	}
	s, err := weights.Open(dir, opts...)
	if err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	t, err := NewTiny(cfg, s.View())
	if err == nil {
		err = s.CheckAllUsed()
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("vae: %s: %w", dir, err)
	}
	t.store = s
	return t, nil
}

// Config returns the model's config.
func (t *Tiny) Config() TinyConfig { return t.cfg }

// Close waits for the calls in flight (cancelling them: they return ErrClosed), then drops the
// compiled programs and closes the weights file LoadTiny opened. Every later call returns
// ErrClosed; Close is idempotent.
func (t *Tiny) Close() error {
	err := errors.Join(t.dec.Close(), t.enc.Close())
	if err == nil && t.store != nil {
		err = t.store.Close()
	}
	return err
}

// Runners returns the runners the decoder's and the encoder's calls go through (for sharing a
// cache with other models).
func (t *Tiny) Runners() (decoder, encoder *nn.Runner) { return t.dec, t.enc }

// SetCacheLimit bounds the memory of the compiled programs kept for reuse (one per size, for the
// decoder and the encoder each; see Decoder.SetCacheLimit).
func (t *Tiny) SetCacheLimit(bytes int64) {
	t.dec.Cache().SetLimit(bytes)
	t.enc.Cache().SetLimit(bytes)
}

// builder is the runners' BuildFunc: forward on one input node, compiled.
func (t *Tiny) builder(forward func(*gorgonia.Node) (*gorgonia.Node, error)) nn.BuildFunc {
	return func(shapes ...tensor.Shape) (*nn.Program, error) {
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(shapes[0]...), gorgonia.WithName("input"))
		y, err := forward(x)
		if err != nil {
			return nil, err
		}
		return nn.Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{y})
	}
}

// ForwardDecoder adds the decoder to z's graph: z (N×latent_channels×h×w, divided by the scaling
// factor, 1) → N×out_channels×(f·h)×(f·w) in about [-1, 1].
func (t *Tiny) ForwardDecoder(z *gorgonia.Node) (*gorgonia.Node, error) {
	if s := z.Shape(); len(s) != 4 || s[1] != t.cfg.LatentChannels {
		return nil, fmt.Errorf("vae: TAESD: latents of shape %v, want N×%d×h×w", s, t.cfg.LatentChannels)
	}
	x, err := nn.SoftClamp(z, float32(t.cfg.LatentMagnitude)) // DecoderTiny: tanh(x / 3) * 3
	if err != nil {
		return nil, err
	}
	if x, err = forwardAll(t.decoder, x); err != nil {
		return nil, err
	}
	return nn.AddScale(x, -0.5, 2) // x.mul(2).sub(1)
}

// ForwardEncoder adds the encoder to x's graph: images x (N×in_channels×H×W in [-1, 1], H and
// W multiples of DownscaleFactor) → latents N×latent_channels×(H/f)×(W/f).
func (t *Tiny) ForwardEncoder(x *gorgonia.Node) (*gorgonia.Node, error) {
	if s := x.Shape(); len(s) != 4 || s[1] != t.cfg.InChannels {
		return nil, fmt.Errorf("vae: TAESD: images of shape %v, want N×%d×H×W", s, t.cfg.InChannels)
	}
	h, err := nn.AddScale(x, 1, 0.5) // x.add(1).div(2)
	if err != nil {
		return nil, err
	}
	return forwardAll(t.encoder, h)
}

// Decode turns latents (N×latent_channels×h×w float32, divided by the scaling factor, which is
// 1) into N×out_channels×(8h)×(8w) images in about [-1, 1], one sample at a time; vae.ToImages
// makes pictures of them. The program for each size is compiled on first use and kept within the
// SetCacheLimit budget.
func (t *Tiny) Decode(ctx context.Context, latents *tensor.Dense) (*tensor.Dense, error) {
	n, h, w, data, err := checkNCHW("TAESD latents", latents, t.cfg.LatentChannels, 1)
	if err != nil {
		return nil, err
	}
	f := t.cfg.UpscaleFactor()
	return t.run(ctx, t.dec, n, t.cfg.LatentChannels, h, w, t.cfg.OutChannels, f*h, f*w, data)
}

// Encode turns images (N×in_channels×H×W float32 in [-1, 1], H and W multiples of 8) into
// latents N×latent_channels×(H/8)×(W/8), the diffusion latents as they are (TAESD's encoder is
// deterministic: no distribution, no sampling).
func (t *Tiny) Encode(ctx context.Context, images *tensor.Dense) (*tensor.Dense, error) {
	f := t.cfg.DownscaleFactor()
	n, h, w, data, err := checkNCHW("TAESD images", images, t.cfg.InChannels, f)
	if err != nil {
		return nil, err
	}
	return t.run(ctx, t.enc, n, t.cfg.InChannels, h, w, t.cfg.LatentChannels, h/f, w/f, data)
}

// run runs r on each of the n samples (c×h×w each) in data; each output is oc×oh×ow.
func (t *Tiny) run(ctx context.Context, r *nn.Runner, n, c, h, w, oc, oh, ow int, data []float32) (*tensor.Dense, error) {
	in, per := c*h*w, oc*oh*ow
	out := make([]float32, n*per)
	for i := range n {
		x := tensor.New(tensor.WithShape(1, c, h, w), tensor.WithBacking(data[i*in:(i+1)*in]))
		err := r.RunFunc(ctx, func(outs []*tensor.Dense) error {
			copy(out[i*per:(i+1)*per], outs[0].Float32s()[:per])
			return nil
		}, x)
		if err != nil {
			return nil, err
		}
	}
	return tensor.New(tensor.WithShape(n, oc, oh, ow), tensor.WithBacking(out)), nil
}

// PeakBytes returns the memory the intermediate values of one sample's decode of h×w latents
// need at once (weights and kernel workspaces not counted), compiling its program.
func (t *Tiny) PeakBytes(h, w int) (int64, error) {
	p, err := t.dec.Program(tensor.Shape{1, t.cfg.LatentChannels, h, w})
	if err != nil {
		return 0, err
	}
	return p.PeakBytes(), nil
}

// checkNCHW validates an N×c×H×W float32 tensor whose H and W are multiples of mult, and
// returns its size and contiguous data.
func checkNCHW(what string, x *tensor.Dense, c, mult int) (n, h, w int, data []float32, err error) {
	if x == nil {
		return 0, 0, 0, nil, fmt.Errorf("vae: nil %s", what)
	}
	if x.Dtype() != tensor.Float32 {
		return 0, 0, 0, nil, fmt.Errorf("vae: %s are %v, want float32", what, x.Dtype())
	}
	s := x.Shape()
	if len(s) != 4 || s[1] != c || s[0] < 1 || s[2] < 1 || s[3] < 1 || s[2]%mult != 0 || s[3]%mult != 0 {
		return 0, 0, 0, nil, fmt.Errorf("vae: %s of shape %v, want N×%d×H×W with H and W multiples of %d", what, s, c, mult)
	}
	if x.IsView() || !x.IsNativelyAccessible() {
		m, ok := x.Materialize().(*tensor.Dense)
		if !ok {
			return 0, 0, 0, nil, errors.New("vae: cannot read the " + what)
		}
		x = m
	}
	return s[0], s[2], s[3], x.Float32s()[:x.Size()], nil
}
