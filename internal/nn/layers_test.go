package nn

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Layer tests: each layer built from synthetic weights, run on small random inputs, against
// float64 compositions of the reference ops in ref_test.go.

// layerTols holds each layer case's tolerance (relative to max(1, max|ref|)): about 10× the
// largest error measured on the AVX-512 and AVX2 paths, given beside it.
var layerTols = map[string]float64{
	"Linear":                                       7e-7, // 6.6e-8
	"Conv2d":                                       2e-6, // 1.3e-7
	"GroupNorm+SiLU":                               2e-7, // 1.2e-8
	"Attention CLIP causal":                        2e-6, // 1.4e-7
	"Attention cross":                              9e-7, // 8.7e-8
	"Attention self":                               2e-6, // 1.3e-7
	"Attention self fused":                         1e-5,
	"Attention self fused, own context":            1e-5,
	"Attention cross fused":                        1e-5,
	"Attention CLIP causal fused":                  1e-5,
	"Transformer2DModel conv projections":          2e-6, // 1.9e-7
	"Transformer2DModel linear projections":        4e-6, // 3.7e-7
	"ResnetBlock2D no temb, 3×3 shortcut, scale 2": 3e-6, // 2.8e-7
	"ResnetBlock2D temb 8→12 shortcut":             2e-6, // 1.4e-7
	"ResnetBlock2D temb":                           2e-6, // 1.4e-7
	"Downsample2D padding 0":                       2e-6, // 1.3e-7
	"Downsample2D padding 1":                       2e-6, // 1.5e-7
	"Upsample2D":                                   9e-7, // 8.6e-8
	"SpatialAttention":                             8e-7, // 7.8e-8
	"TimestepEmbedding":                            9e-7, // 8.5e-8
}

func p64(p Param) arr {
	d := p.Dense()
	if d == nil {
		return arr{}
	}
	return arrOf(d)
}

func refLinearL(l *Linear, x arr) arr { return refLinear(x, p64(l.Weight), p64(l.Bias)) }

func refConvL(c *Conv2d, x arr) arr { return refConv(x, p64(c.Weight), p64(c.Bias), c.Stride, c.Pad) }

func refGroupNormL(n *GroupNorm, x arr) arr {
	return refGroupNorm(x, p64(n.Weight), p64(n.Bias), n.Groups, float64(n.Eps))
}

func refLayerNormL(n *LayerNorm, x arr) arr {
	return refLayerNorm(x, p64(n.Weight), p64(n.Bias), float64(n.Eps))
}

func refAttentionL(a *Attention, x, ctx arr) arr {
	if ctx.d == nil {
		ctx = x
	}
	var q, k, v arr
	switch {
	case a.Q == a.K: // fused q/k/v
		q, k, v = refPart(refLinearL(a.Q, x), 3, 0), refPart(refLinearL(a.K, ctx), 3, 1), refPart(refLinearL(a.V, ctx), 3, 2)
	case a.K == a.V: // fused k/v
		q, k, v = refLinearL(a.Q, x), refPart(refLinearL(a.K, ctx), 2, 0), refPart(refLinearL(a.V, ctx), 2, 1)
	default:
		q, k, v = refLinearL(a.Q, x), refLinearL(a.K, ctx), refLinearL(a.V, ctx)
	}
	h := refAttention(q, k, v, a.cfg.Heads, 1/math.Sqrt(float64(a.cfg.HeadDim)), a.cfg.Causal)
	return refLinearL(a.Out, h)
}

// refPart returns part i of parts equal parts of y's last axis.
func refPart(y arr, parts, i int) arr {
	w := y.shape[len(y.shape)-1] / parts
	shape := append(append([]int(nil), y.shape[:len(y.shape)-1]...), w)
	p := newArr(shape...)
	for r := 0; r < len(p.d)/w; r++ {
		copy(p.d[r*w:(r+1)*w], y.d[r*parts*w+i*w:])
	}
	return p
}

func refFeedForwardL(f *FeedForward, x arr) arr {
	return refLinearL(f.Out, refGEGLU(refLinearL(f.Proj, x)))
}

func refBlockL(b *BasicTransformerBlock, x, ctx arr) arr {
	x = refAdd(refAttentionL(b.Attn1, refLayerNormL(b.Norm1, x), arr{}), x)
	x = refAdd(refAttentionL(b.Attn2, refLayerNormL(b.Norm2, x), ctx), x)
	return refAdd(refFeedForwardL(b.FF, refLayerNormL(b.Norm3, x)), x)
}

func refTransformer2DL(t *Transformer2DModel, x, ctx arr) arr {
	h, w := x.shape[2], x.shape[3]
	y := refGroupNormL(t.Norm, x)
	if t.cfg.UseLinearProjection {
		y = refLinearL(t.ProjIn, refToTokens(y))
	} else {
		y = refToTokens(refConvL(t.ProjInConv, y))
	}
	for _, b := range t.TransformerBlocks {
		y = refBlockL(b, y, ctx)
	}
	if t.cfg.UseLinearProjection {
		y = refFromTokens(refLinearL(t.ProjOut, y), h, w)
	} else {
		y = refConvL(t.ProjOutConv, refFromTokens(y, h, w))
	}
	return refAdd(y, x)
}

func refResnetL(r *ResnetBlock2D, x, temb arr) arr {
	h := refConvL(r.Conv1, refGroupNormL(r.Norm1, x).map1(refSiLU))
	if r.TimeEmbProj != nil {
		h = refChannelBias(h, refLinearL(r.TimeEmbProj, temb.map1(refSiLU)))
	}
	h = refConvL(r.Conv2, refGroupNormL(r.Norm2, h).map1(refSiLU))
	sc := x
	if r.ConvShortcut != nil {
		sc = refConvL(r.ConvShortcut, x)
	}
	return refAdd(sc, h).map1(func(v float64) float64 { return v / float64(r.scale) })
}

func refSpatialAttentionL(a *SpatialAttention, x arr) arr {
	h := refToTokens(refGroupNormL(a.GroupNorm, x))
	h = refFromTokens(refAttentionL(a.Attn, h, arr{}), x.shape[2], x.shape[3])
	return refAdd(h, x).map1(func(v float64) float64 { return v / float64(a.cfg.RescaleOutputFactor) })
}

// layerCase runs a layer built by build on random inputs of the given shapes and compares with
// ref.
func layerCase(t *testing.T, label string, r *rand.Rand, shapes [][]int,
	build func(in []*gorgonia.Node) (*gorgonia.Node, error), ref func(in []arr) arr) {
	t.Helper()
	var vals []*tensor.Dense
	var ins []arr
	for _, s := range shapes {
		v := randDense(r, s...)
		vals = append(vals, v)
		ins = append(ins, arrOf(v))
	}
	got := runNode(t, build, vals...)
	tol, ok := layerTols[label]
	if !ok {
		t.Fatalf("%s: no tolerance in layerTols", label)
	}
	checkClose(t, label, got, ref(ins), tol)
}

func TestLayersAgainstFloat64(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	w := weights.NewSynthetic().View()

	lin, err := NewLinear(w.Sub("lin"), 6, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	layerCase(t, "Linear", r, [][]int{{2, 3, 6}}, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return lin.Forward(in[0]) },
		func(in []arr) arr { return refLinearL(lin, in[0]) })

	conv, err := NewConv2d(w.Sub("conv"), 4, 6, 3, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	layerCase(t, "Conv2d", r, [][]int{{2, 4, 5, 6}}, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return conv.Forward(in[0]) },
		func(in []arr) arr { return refConvL(conv, in[0]) })

	gn, err := NewGroupNorm(w.Sub("gn"), 2, 4, 1e-6)
	if err != nil {
		t.Fatal(err)
	}
	layerCase(t, "GroupNorm+SiLU", r, [][]int{{2, 4, 3, 3}}, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return gn.ForwardSiLU(in[0]) },
		func(in []arr) arr { return refGroupNormL(gn, in[0]).map1(refSiLU) })

	// Self, cross and CLIP-style causal attention with biases; with an inner width of 16 the
	// projections that share an input are fused (NewFusedLinear), also for a self-attention
	// given a context of its own.
	for _, c := range []struct {
		label string
		cfg   AttentionConfig
		ctx   []int
		fused int // projections in the fused Linear
	}{
		{"Attention self", AttentionConfig{QueryDim: 8, Heads: 2, HeadDim: 4}, nil, 0},
		{"Attention cross", AttentionConfig{QueryDim: 8, CrossDim: 6, Heads: 4, HeadDim: 3}, []int{2, 5, 6}, 0},
		{"Attention CLIP causal", AttentionConfig{QueryDim: 8, Heads: 2, HeadDim: 4, QKVBias: true, Causal: true, Names: CLIPNames()}, nil, 0},
		{"Attention self fused", AttentionConfig{QueryDim: 8, Heads: 2, HeadDim: 8}, nil, 3},
		{"Attention self fused, own context", AttentionConfig{QueryDim: 8, Heads: 4, HeadDim: 4}, []int{2, 5, 8}, 3},
		{"Attention cross fused", AttentionConfig{QueryDim: 8, CrossDim: 6, Heads: 2, HeadDim: 16, QKVBias: true}, []int{2, 5, 6}, 2},
		{"Attention CLIP causal fused", AttentionConfig{QueryDim: 8, Heads: 4, HeadDim: 8, QKVBias: true, Causal: true, Names: CLIPNames()}, nil, 3},
	} {
		a, err := NewAttention(w.Sub("attn"), c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(a.K.Parts); got != c.fused {
			t.Fatalf("%s: keys from a Linear of %d parts, want %d", c.label, got, c.fused)
		}
		shapes := [][]int{{2, 7, 8}}
		if c.ctx != nil {
			shapes = append(shapes, c.ctx)
		}
		layerCase(t, c.label, r, shapes, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
			if len(in) == 2 {
				return a.Forward(in[0], in[1])
			}
			return a.Forward(in[0], nil)
		}, func(in []arr) arr {
			if len(in) == 2 {
				return refAttentionL(a, in[0], in[1])
			}
			return refAttentionL(a, in[0], arr{})
		})
	}

	for _, linear := range []bool{false, true} {
		tr, err := NewTransformer2DModel(w.Sub("tr"), Transformer2DConfig{InChannels: 8, Heads: 2, HeadDim: 6, CrossDim: 5,
			Layers: 2, Groups: 4, UseLinearProjection: linear})
		if err != nil {
			t.Fatal(err)
		}
		label := "Transformer2DModel conv projections"
		if linear {
			label = "Transformer2DModel linear projections"
		}
		layerCase(t, label, r, [][]int{{2, 8, 3, 4}, {2, 6, 5}},
			func(in []*gorgonia.Node) (*gorgonia.Node, error) { return tr.Forward(in[0], in[1]) },
			func(in []arr) arr { return refTransformer2DL(tr, in[0], in[1]) })
	}

	for _, c := range []struct {
		label string
		in    int
		cfg   ResnetBlock2DConfig
	}{
		{"ResnetBlock2D temb", 8, ResnetBlock2DConfig{TembChannels: 10, Groups: 4, Eps: 1e-5}},
		{"ResnetBlock2D temb 8→12 shortcut", 8, ResnetBlock2DConfig{Out: 12, TembChannels: 10, Groups: 4}},
		{"ResnetBlock2D no temb, 3×3 shortcut, scale 2", 8, ResnetBlock2DConfig{Out: 4, Groups: 2, ConvShortcut: true, OutputScaleFactor: 2}},
	} {
		rb, err := NewResnetBlock2D(w.Sub("res"), c.in, c.cfg)
		if err != nil {
			t.Fatal(err)
		}
		shapes := [][]int{{2, c.in, 5, 4}}
		if c.cfg.TembChannels > 0 {
			shapes = append(shapes, []int{2, c.cfg.TembChannels})
		}
		layerCase(t, c.label, r, shapes, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
			if len(in) == 2 {
				return rb.Forward(in[0], in[1])
			}
			return rb.Forward(in[0], nil)
		}, func(in []arr) arr {
			if len(in) == 2 {
				return refResnetL(rb, in[0], in[1])
			}
			return refResnetL(rb, in[0], arr{})
		})
	}

	for _, pad := range []int{0, 1} {
		d, err := NewDownsample2D(w.Sub("down"), 4, 6, pad)
		if err != nil {
			t.Fatal(err)
		}
		layerCase(t, "Downsample2D padding "+string(rune('0'+pad)), r, [][]int{{2, 4, 6, 8}},
			func(in []*gorgonia.Node) (*gorgonia.Node, error) { return d.Forward(in[0]) },
			func(in []arr) arr {
				x := in[0]
				if pad == 0 {
					x = refPad(x, 0, 1, 0, 1)
				}
				return refConvL(d.Conv, x)
			})
	}
	up, err := NewUpsample2D(w.Sub("up"), 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	layerCase(t, "Upsample2D", r, [][]int{{2, 4, 3, 5}}, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return up.Forward(in[0]) },
		func(in []arr) arr { return refConvL(up.Conv, refUpsample(in[0])) })

	sa, err := NewSpatialAttention(w.Sub("sa"), SpatialAttentionConfig{Channels: 8, Groups: 4, RescaleOutputFactor: 2})
	if err != nil {
		t.Fatal(err)
	}
	layerCase(t, "SpatialAttention", r, [][]int{{2, 8, 3, 4}}, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return sa.Forward(in[0]) },
		func(in []arr) arr { return refSpatialAttentionL(sa, in[0]) })

	te, err := NewTimestepEmbedding(w.Sub("te"), 8, 12, "silu")
	if err != nil {
		t.Fatal(err)
	}
	layerCase(t, "TimestepEmbedding", r, [][]int{{2, 8}}, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return te.Forward(in[0]) },
		func(in []arr) arr { return refLinearL(te.Linear2, refLinearL(te.Linear1, in[0]).map1(refSiLU)) })

	emb, err := NewEmbedding(w.Sub("token_embedding"), 10, 4)
	if err != nil {
		t.Fatal(err)
	}
	ids := tensor.New(tensor.WithShape(1, 3), tensor.WithBacking([]float32{9, 0, 4}))
	got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return emb.Forward(in[0]) }, ids)
	want := newArr(1, 3, 4)
	for i, id := range []int{9, 0, 4} {
		copy(want.d[i*4:], p64(emb.Weight).d[id*4:id*4+4])
	}
	checkClose(t, "Embedding", got, want, 0)
}

// TestLayerWeightErrors checks that a missing or mis-shaped weight is an error naming the tensor.
func TestLayerWeightErrors(t *testing.T) {
	st, err := weights.FromTensors("test store", map[string]*tensor.Dense{
		"blk.norm1.weight": tensor.New(tensor.WithShape(8), tensor.WithBacking(make([]float32, 8))),
		"blk.norm1.bias":   tensor.New(tensor.WithShape(8), tensor.WithBacking(make([]float32, 8))),
		"blk.conv1.weight": tensor.New(tensor.WithShape(8, 8, 1, 1), tensor.WithBacking(make([]float32, 64))),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewResnetBlock2D(st.View().Sub("blk"), 8, ResnetBlock2DConfig{Groups: 4})
	t.Logf("mis-shaped conv1: %v", err)
	if err == nil || !strings.Contains(err.Error(), "blk.conv1.weight") {
		t.Errorf("mis-shaped weight: error %v, want one naming blk.conv1.weight", err)
	}
	_, err = NewLinear(st.View().Sub("nowhere"), 2, 2, true)
	t.Logf("missing: %v", err)
	if err == nil || !strings.Contains(err.Error(), "nowhere.weight") {
		t.Errorf("missing weight: error %v", err)
	}
	if _, err := NewGroupNorm(st.View().Sub("blk.norm1"), 3, 8, 1e-5); err == nil {
		t.Error("8 channels in 3 groups accepted")
	}
}

// TestSameWeightsTwoLayersNoMerge checks that two layers reading different tensors under the same
// short name in one graph stay distinct nodes.
func TestSameWeightsTwoLayersNoMerge(t *testing.T) {
	w := weights.NewSynthetic().View()
	a, err := NewLinear(w.Sub("a"), 4, 4, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewLinear(w.Sub("b"), 4, 4, true)
	if err != nil {
		t.Fatal(err)
	}
	g := gorgonia.NewGraph()
	x := input(g, "x", 1, 4)
	ya, err := a.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	yb, err := b.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	if ya == yb {
		t.Fatal("linears with different weights merged")
	}
	if ya2, _ := a.Forward(x); ya2 != ya {
		t.Error("the same layer applied twice to the same input did not merge")
	}
}
