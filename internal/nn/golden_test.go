package nn

import (
	"context"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// These tests run single layers of the tiny reference pipeline (testdata/tiny-sd) on the inputs
// diffusers/transformers recorded as taps and compare with the recorded outputs.

// Each block's tolerance (relative to max(1, max|ref|), as golden.Check applies it) is about 10×
// the largest error measured on the AVX-512 and AVX2 paths, given beside it: a per-block limit,
// so a regression in one block cannot hide under another's margin.

func openComponent(t *testing.T, name string) weights.View {
	t.Helper()
	s, err := weights.Open(golden.Path("tiny-sd", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.View()
}

func goldenDense(ref *golden.Tensor) *tensor.Dense {
	return tensor.New(tensor.WithShape(ref.Shape...), tensor.WithBacking(ref.F32()))
}

// runLayers binds refs to fresh input nodes, lets build add the layers, and runs the graph once.
func runLayers(t *testing.T, build func(in []*gorgonia.Node) ([]*gorgonia.Node, error), refs ...*golden.Tensor) []*tensor.Dense {
	t.Helper()
	g := gorgonia.NewGraph()
	var in []*gorgonia.Node
	var vals []*tensor.Dense
	for _, r := range refs {
		in = append(in, input(g, r.Name, r.Shape...))
		vals = append(vals, goldenDense(r))
	}
	outs, err := build(in)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(g, in, outs)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), vals...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func f32(d *tensor.Dense) []float32 { return d.Float32s()[:d.Size()] }

func TestGoldenUNetLayers(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	w := openComponent(t, "unet")
	tap := func(name string) *golden.Tensor { return f.Must(t, "tap.unet."+name) }

	t.Run("time_proj+time_embedding", func(t *testing.T) {
		ts := &golden.Tensor{Name: "t", Shape: []int{2}, Data: []float64{981, 981}}
		temb, err := NewTimestepEmbedding(w.Sub("time_embedding"), 32, 128, "silu")
		if err != nil {
			t.Fatal(err)
		}
		res := runLayers(t, func(in []*gorgonia.Node) ([]*gorgonia.Node, error) {
			p, err := NewTimesteps(32, true, 0).Forward(in[0])
			if err != nil {
				return nil, err
			}
			e, err := temb.Forward(p)
			return []*gorgonia.Node{p, e}, err
		}, ts)
		golden.Check(t, "time_proj", f32(res[0]), tap("time_proj"), 2e-5)           // 1.9e-6: sin/cos of 981·frequency in float32
		golden.Check(t, "time_embedding", f32(res[1]), tap("time_embedding"), 5e-6) // 4.5e-7
	})

	t.Run("resnet", func(t *testing.T) {
		r, err := NewResnetBlock2D(w.Sub("down_blocks.0.resnets.0"), 32,
			ResnetBlock2DConfig{Out: 32, TembChannels: 128, Groups: 8, Eps: 1e-5})
		if err != nil {
			t.Fatal(err)
		}
		res := runLayers(t, func(in []*gorgonia.Node) ([]*gorgonia.Node, error) {
			y, err := r.Forward(in[0], in[1])
			return []*gorgonia.Node{y}, err
		}, tap("conv_in"), tap("time_embedding"))
		golden.Check(t, "down_blocks.0.resnets.0", f32(res[0]), tap("down_blocks.0.resnets.0"), 4e-6) // 3.4e-7
	})

	t.Run("transformer", func(t *testing.T) {
		tw := w.Sub("down_blocks.0.attentions.0")
		tr, err := NewTransformer2DModel(tw, Transformer2DConfig{InChannels: 32, Heads: 8, HeadDim: 4, CrossDim: 32, Groups: 8})
		if err != nil {
			t.Fatal(err)
		}
		text := f.Must(t, "text.last_hidden_state")
		res := runLayers(t, func(in []*gorgonia.Node) ([]*gorgonia.Node, error) {
			y, err := tr.Forward(in[0], in[1])
			if err != nil {
				return nil, err
			}
			// Taps inside: the block from the recorded proj_in output.
			tok, err := ToTokens(in[2])
			if err != nil {
				return nil, err
			}
			blk := tr.TransformerBlocks[0]
			n1, err := blk.Norm1.Forward(tok)
			if err != nil {
				return nil, err
			}
			a1, err := blk.Attn1.Forward(n1, nil)
			if err != nil {
				return nil, err
			}
			b, err := blk.Forward(tok, in[1])
			return []*gorgonia.Node{y, b, a1}, err
		}, tap("down_blocks.0.resnets.0"), text, tap("down_blocks.0.attentions.0.proj_in"))
		golden.Check(t, "attentions.0", f32(res[0]), tap("down_blocks.0.attentions.0"), 3e-6)                                          // 2.5e-7
		golden.Check(t, "transformer_blocks.0", f32(res[1]), tap("down_blocks.0.attentions.0.transformer_blocks.0"), 4e-6)             // 2.9e-7
		golden.Check(t, "transformer_blocks.0.attn1", f32(res[2]), tap("down_blocks.0.attentions.0.transformer_blocks.0.attn1"), 9e-6) // 8.0e-7
	})

	// ForwardTaps hands over every inner module the reference recorded, under its diffusers name.
	t.Run("transformer taps", func(t *testing.T) {
		tr, err := NewTransformer2DModel(w.Sub("down_blocks.0.attentions.0"), Transformer2DConfig{InChannels: 32, Heads: 8, HeadDim: 4, CrossDim: 32, Groups: 8})
		if err != nil {
			t.Fatal(err)
		}
		names := []string{"norm", "proj_in", "transformer_blocks.0", "transformer_blocks.0.attn1",
			"transformer_blocks.0.attn2", "transformer_blocks.0.ff"}
		res := runLayers(t, func(in []*gorgonia.Node) ([]*gorgonia.Node, error) {
			got := map[string]*gorgonia.Node{}
			y, err := tr.ForwardTaps(in[0], in[1], func(name string, n *gorgonia.Node) {
				if _, dup := got[name]; dup {
					t.Errorf("tap %q called twice", name)
				}
				got[name] = n
			})
			if err != nil {
				return nil, err
			}
			if len(got) != len(names) {
				t.Errorf("%d taps %v, want %v", len(got), got, names)
			}
			outs := []*gorgonia.Node{y}
			for _, name := range names {
				if got[name] == nil {
					t.Fatalf("no tap %q", name)
				}
				outs = append(outs, got[name])
			}
			return outs, nil
		}, tap("down_blocks.0.resnets.0"), f.Must(t, "text.last_hidden_state"))
		golden.Check(t, "attentions.0 (ForwardTaps)", f32(res[0]), tap("down_blocks.0.attentions.0"), 3e-6) // 2.5e-7
		// measured: 1.6e-7, 1.8e-7, 2.9e-7, 7.3e-7, 5.5e-7, 8.8e-7
		tapTol := map[string]float64{
			"norm": 2e-6, "proj_in": 2e-6, "transformer_blocks.0": 3e-6, "transformer_blocks.0.attn1": 8e-6,
			"transformer_blocks.0.attn2": 6e-6, "transformer_blocks.0.ff": 9e-6,
		}
		for i, name := range names {
			golden.Check(t, name, f32(res[i+1]), tap("down_blocks.0.attentions.0."+name), tapTol[name])
		}
	})

	t.Run("downsample", func(t *testing.T) {
		d, err := NewDownsample2D(w.Sub("down_blocks.0.downsamplers.0"), 32, 32, 1)
		if err != nil {
			t.Fatal(err)
		}
		res := runLayers(t, func(in []*gorgonia.Node) ([]*gorgonia.Node, error) {
			y, err := d.Forward(in[0])
			return []*gorgonia.Node{y}, err
		}, tap("down_blocks.0.attentions.0"))
		golden.Check(t, "downsamplers.0", f32(res[0]), tap("down_blocks.0.downsamplers.0"), 7e-6) // 6.7e-7
	})
}

func TestGoldenVAELayers(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	w := openComponent(t, "vae").Sub("decoder")
	tap := func(name string) *golden.Tensor { return f.Must(t, "tap.vae.decoder."+name) }
	cfg := ResnetBlock2DConfig{Groups: 8, Eps: 1e-6}
	var resnets []*ResnetBlock2D
	for _, name := range []string{"mid_block.resnets.0", "mid_block.resnets.1", "up_blocks.0.resnets.0", "up_blocks.0.resnets.1", "up_blocks.0.resnets.2"} {
		r, err := NewResnetBlock2D(w.Sub(name), 32, cfg)
		if err != nil {
			t.Fatal(err)
		}
		resnets = append(resnets, r)
	}
	attn, err := NewSpatialAttention(w.Sub("mid_block.attentions.0"), SpatialAttentionConfig{Channels: 32, Groups: 8, Eps: 1e-6})
	if err != nil {
		t.Fatal(err)
	}
	up, err := NewUpsample2D(w.Sub("up_blocks.0.upsamplers.0"), 32, 32)
	if err != nil {
		t.Fatal(err)
	}
	res := runLayers(t, func(in []*gorgonia.Node) ([]*gorgonia.Node, error) {
		h, err := resnets[0].Forward(in[0], nil)
		var a, mid, r0, u *gorgonia.Node
		if err == nil {
			a, err = attn.Forward(h)
		}
		if err == nil {
			mid, err = resnets[1].Forward(a, nil)
		}
		if err == nil {
			r0, err = resnets[2].Forward(in[1], nil)
		}
		if err == nil {
			h, err = resnets[3].Forward(r0, nil)
		}
		if err == nil {
			h, err = resnets[4].Forward(h, nil)
		}
		if err == nil {
			u, err = up.Forward(h)
		}
		return []*gorgonia.Node{a, mid, r0, u}, err
	}, tap("conv_in"), tap("mid_block"))
	golden.Check(t, "mid_block.attentions.0", f32(res[0]), tap("mid_block.attentions.0"), 5e-6) // 4.5e-7
	golden.Check(t, "mid_block", f32(res[1]), tap("mid_block"), 5e-6)                           // 4.7e-7
	golden.Check(t, "up_blocks.0.resnets.0", f32(res[2]), tap("up_blocks.0.resnets.0"), 4e-6)   // 3.5e-7
	golden.Check(t, "up_blocks.0", f32(res[3]), tap("up_blocks.0"), 8e-6)                       // 7.2e-7
}

func TestGoldenCLIPLayer(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	w := openComponent(t, "text_encoder").Sub("text_model.encoder.layers.0")
	tap := func(name string) *golden.Tensor { return f.Must(t, "tap.text."+name) }
	ln1, err := NewLayerNorm(w.Sub("layer_norm1"), 32, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	ln2, err := NewLayerNorm(w.Sub("layer_norm2"), 32, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	attn, err := NewAttention(w.Sub("self_attn"), AttentionConfig{QueryDim: 32, Heads: 4, HeadDim: 8, QKVBias: true, Causal: true, Names: CLIPNames()})
	if err != nil {
		t.Fatal(err)
	}
	fc1, err := NewLinear(w.Sub("mlp.fc1"), 32, 37, true)
	if err != nil {
		t.Fatal(err)
	}
	fc2, err := NewLinear(w.Sub("mlp.fc2"), 37, 32, true)
	if err != nil {
		t.Fatal(err)
	}
	res := runLayers(t, func(in []*gorgonia.Node) ([]*gorgonia.Node, error) {
		x := in[0]
		h, err := ln1.Forward(x)
		var a, m, out *gorgonia.Node
		if err == nil {
			a, err = attn.Forward(h, nil)
		}
		if err == nil {
			x, err = Add(x, a)
		}
		if err == nil {
			h, err = ln2.Forward(x)
		}
		if err == nil {
			h, err = fc1.Forward(h)
		}
		if err == nil {
			h, err = QuickGELU(h)
		}
		if err == nil {
			m, err = fc2.Forward(h)
		}
		if err == nil {
			out, err = Add(x, m)
		}
		return []*gorgonia.Node{a, m, out}, err
	}, tap("embeddings"))
	golden.Check(t, "layers.0.self_attn", f32(res[0]), tap("layers.0.self_attn"), 5e-6) // 4.2e-7
	golden.Check(t, "layers.0.mlp", f32(res[1]), tap("layers.0.mlp"), 4e-6)             // 3.1e-7
	golden.Check(t, "layers.0", f32(res[2]), tap("layers.0"), 3e-6)                     // 2.8e-7
}
