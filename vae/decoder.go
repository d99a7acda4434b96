package vae

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/smallsd/smallsd/internal/nn"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ErrClosed is returned (wrapped) by every call on a closed Decoder; it is the same value as
// clip.ErrClosed, unet.ErrClosed and pipeline.ErrClosed.
var ErrClosed = nn.ErrClosed

// Decoder is AutoencoderKL's decoding half: post_quant_conv followed by diffusers' Decoder
// (conv_in, mid block, up blocks, GroupNorm + SiLU, conv_out). Fields are named as the
// checkpoint names the modules. A Decoder is safe for concurrent use (calls with the same latent
// size take turns), and Close waits for the calls in flight.
type Decoder struct {
	PostQuantConv *nn.Conv2d
	ConvIn        *nn.Conv2d
	MidBlock      *UNetMidBlock2D
	UpBlocks      []*UpDecoderBlock2D
	ConvNormOut   *nn.GroupNorm
	ConvOut       *nn.Conv2d

	part // config, runner (programs per latent size h×w, batch 1), weights file
}

// NewDecoder builds the decoder from cfg and the AutoencoderKL weights under w (names such as
// "decoder.conv_in.weight" and "post_quant_conv.weight"; the encoder's are not read).
func NewDecoder(cfg Config, w weights.View) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vae: config: %w", err)
	}
	d := &Decoder{part: part{cfg: cfg}}
	d.runner = nn.NewRunner("vae", func(shapes ...tensor.Shape) (*nn.Program, error) {
		g := gorgonia.NewGraph()
		z := latentNode(g, shapes[0][0], shapes[0][1], shapes[0][2], shapes[0][3])
		y, err := d.forward(z, nil, false)
		if err != nil {
			return nil, err
		}
		return nn.Compile(g, []*gorgonia.Node{z}, []*gorgonia.Node{y})
	})
	var err error
	lat, groups, boc := cfg.LatentChannels, cfg.NormNumGroups, cfg.BlockOutChannels
	if d.PostQuantConv, err = nn.NewConv2d(w.Sub("post_quant_conv"), lat, lat, 1, 1, 0); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	dw := w.Sub("decoder")
	top := boc[len(boc)-1]
	if d.ConvIn, err = nn.NewConv2d(dw.Sub("conv_in"), lat, top, 3, 1, 1); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	if d.MidBlock, err = NewUNetMidBlock2D(dw.Sub("mid_block"), top, groups); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	out := top
	for i := range cfg.UpBlockTypes {
		in := out
		out = boc[len(boc)-1-i]
		b, err := NewUpDecoderBlock2D(dw.Sub(fmt.Sprintf("up_blocks.%d", i)), in, out, cfg.LayersPerBlock+1, groups, i != len(boc)-1)
		if err != nil {
			return nil, fmt.Errorf("vae: %w", err)
		}
		d.UpBlocks = append(d.UpBlocks, b)
	}
	if d.ConvNormOut, err = nn.NewGroupNorm(dw.Sub("conv_norm_out"), groups, boc[0], decoderResnetEps); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	if d.ConvOut, err = nn.NewConv2d(dw.Sub("conv_out"), boc[0], cfg.OutChannels, 3, 1, 1); err != nil {
		return nil, fmt.Errorf("vae: %w", err)
	}
	return d, nil
}

// LoadDecoder reads dir/config.json and the weights in dir (a model's vae folder) and builds the
// decoder. The weights file stays open (memory-mapped) until Close.
func LoadDecoder(dir string, opts ...weights.Option) (*Decoder, error) {
	return load(dir, opts, NewDecoder)
}

// Forward adds the decoder to z's graph: z (N×latent_channels×h×w, already divided by the
// scaling factor) → N×out_channels×(f·h)×(f·w) with f = Config().UpscaleFactor().
func (d *Decoder) Forward(z *gorgonia.Node) (*gorgonia.Node, error) {
	return d.forward(z, nil, false)
}

// forward records every module's output in rec; unfused keeps conv_norm_out and conv_act as two
// nodes so both can be tapped.
func (d *Decoder) forward(z *gorgonia.Node, rec recorder, unfused bool) (*gorgonia.Node, error) {
	if s := z.Shape(); len(s) != 4 || s[1] != d.cfg.LatentChannels {
		return nil, fmt.Errorf("vae: latents of shape %v, want N×%d×h×w", s, d.cfg.LatentChannels)
	}
	h, err := d.PostQuantConv.Forward(z)
	if err != nil {
		return nil, err
	}
	rec.add("post_quant_conv", h)
	if h, err = d.ConvIn.Forward(h); err != nil {
		return nil, err
	}
	rec.add("decoder.conv_in", h)
	if h, err = d.MidBlock.forward(h, rec, "decoder.mid_block"); err != nil {
		return nil, err
	}
	for i, b := range d.UpBlocks {
		if h, err = b.forward(h, rec, fmt.Sprintf("decoder.up_blocks.%d", i)); err != nil {
			return nil, err
		}
	}
	if unfused {
		if h, err = d.ConvNormOut.Forward(h); err == nil {
			rec.add("decoder.conv_norm_out", h)
			h, err = nn.SiLU(h)
		}
	} else {
		h, err = d.ConvNormOut.ForwardSiLU(h)
	}
	if err != nil {
		return nil, err
	}
	rec.add("decoder.conv_act", h)
	if h, err = d.ConvOut.Forward(h); err != nil {
		return nil, err
	}
	rec.add("decoder.conv_out", h)
	rec.add("decoder", h)
	return h, nil
}

// Decode turns latents (N×latent_channels×h×w float32, already divided by the scaling factor)
// into N×out_channels×(8h)×(8w) images in about [-1, 1] (the factor is UpscaleFactor). Samples
// are decoded one at a time, so memory does not grow with N; the program for each h×w is
// compiled on first use and kept for reuse within the SetCacheLimit budget.
func (d *Decoder) Decode(ctx context.Context, latents *tensor.Dense) (*tensor.Dense, error) {
	n, h, w, data, err := d.checkLatents(latents)
	if err != nil {
		return nil, err
	}
	f := d.cfg.UpscaleFactor()
	per := d.cfg.OutChannels * f * h * f * w
	out := make([]float32, n*per)
	in := d.cfg.LatentChannels * h * w
	for i := 0; i < n; i++ {
		x := tensor.New(tensor.WithShape(1, d.cfg.LatentChannels, h, w), tensor.WithBacking(data[i*in:(i+1)*in]))
		if err := d.run(ctx, x, out[i*per:(i+1)*per]); err != nil {
			return nil, err
		}
	}
	return tensor.New(tensor.WithShape(n, d.cfg.OutChannels, f*h, f*w), tensor.WithBacking(out)), nil
}

// run decodes one sample x into dst.
func (d *Decoder) run(ctx context.Context, x *tensor.Dense, dst []float32) error {
	return d.runner.RunFunc(ctx, func(outs []*tensor.Dense) error {
		copy(dst, outs[0].Float32s()[:len(dst)])
		return nil
	}, x)
}

// BufferBytes returns the bytes of working buffers one sample's decode at latent size h×w
// needs (weights not counted), compiling its program (kept for the Decode that follows)
// without allocating them.
func (d *Decoder) BufferBytes(h, w int) (int64, error) {
	p, err := d.runner.Program(tensor.Shape{1, d.cfg.LatentChannels, h, w})
	if err != nil {
		return 0, err
	}
	return p.BufferBytes(), nil
}

// PeakBytes returns the memory the intermediate values of one sample's decode at latent size
// h×w need at once (weights and kernel workspaces not counted), compiling its program.
func (d *Decoder) PeakBytes(h, w int) (int64, error) {
	p, err := d.runner.Program(tensor.Shape{1, d.cfg.LatentChannels, h, w})
	if err != nil {
		return 0, err
	}
	return p.PeakBytes(), nil
}

func latentNode(g *gorgonia.ExprGraph, n, c, h, w int) *gorgonia.Node {
	return gorgonia.NewTensor(g, tensor.Float32, 4, gorgonia.WithShape(n, c, h, w), gorgonia.WithName("latents"))
}

// checkLatents validates latents and returns their size and contiguous data.
func (d *Decoder) checkLatents(latents *tensor.Dense) (n, h, w int, data []float32, err error) {
	if latents == nil {
		return 0, 0, 0, nil, errors.New("vae: nil latents")
	}
	if latents.Dtype() != tensor.Float32 {
		return 0, 0, 0, nil, fmt.Errorf("vae: latents are %v, want float32", latents.Dtype())
	}
	s := latents.Shape()
	if len(s) != 4 || s[1] != d.cfg.LatentChannels || s[0] < 1 || s[2] < 1 || s[3] < 1 {
		return 0, 0, 0, nil, fmt.Errorf("vae: latents of shape %v, want N×%d×h×w", s, d.cfg.LatentChannels)
	}
	if latents.IsView() || !latents.IsNativelyAccessible() {
		m, ok := latents.Materialize().(*tensor.Dense)
		if !ok {
			return 0, 0, 0, nil, errors.New("vae: cannot read the latents' data")
		}
		latents = m
	}
	return s[0], s[2], s[3], latents.Float32s()[:latents.Size()], nil
}

// ForwardTaps decodes latents like Decode and returns the outputs of the named modules, by
// their path in AutoencoderKL ("post_quant_conv", "decoder.conv_in", "decoder.mid_block",
// "decoder.mid_block.attentions.0", "decoder.up_blocks.0.resnets.1", "decoder.conv_norm_out",
// "decoder", …), as fresh tensors for the whole batch. It compiles a program for each call:
// it is meant for tests and debugging.
func (d *Decoder) ForwardTaps(ctx context.Context, latents *tensor.Dense, taps []string) (map[string]*tensor.Dense, error) {
	n, h, w, data, err := d.checkLatents(latents)
	if err != nil {
		return nil, err
	}
	unfused := false
	for _, t := range taps {
		unfused = unfused || t == "decoder.conv_norm_out"
	}
	g := gorgonia.NewGraph()
	z := latentNode(g, n, d.cfg.LatentChannels, h, w)
	rec := recorder{}
	if _, err := d.forward(z, rec, unfused); err != nil {
		return nil, err
	}
	outs := make([]*gorgonia.Node, len(taps))
	for i, t := range taps {
		if outs[i] = rec[t]; outs[i] == nil {
			known := make([]string, 0, len(rec))
			for k := range rec {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("vae: unknown tap %q (known: %v)", t, known)
		}
	}
	x := tensor.New(tensor.WithShape(n, d.cfg.LatentChannels, h, w), tensor.WithBacking(data))
	m := make(map[string]*tensor.Dense, len(taps))
	err = d.runner.Call(ctx, func(ctx context.Context) error {
		prog, err := nn.Compile(g, []*gorgonia.Node{z}, outs)
		if err != nil {
			return fmt.Errorf("vae: %w", err)
		}
		res, err := prog.Run(ctx, x)
		if err != nil {
			return fmt.Errorf("vae: %w", err)
		}
		for i, t := range taps {
			m[t] = nn.Clone(res[i])
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}
