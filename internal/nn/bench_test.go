package nn

import (
	"context"
	"fmt"
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// benchProgram compiles the graph built by build over inputs of the given shapes and times Run.
func benchProgram(b *testing.B, shapes [][]int, build func(in []*gorgonia.Node) (*gorgonia.Node, error)) {
	r := rand.New(rand.NewSource(1))
	g := gorgonia.NewGraph()
	var in []*gorgonia.Node
	var vals []*tensor.Dense
	for i, s := range shapes {
		in = append(in, input(g, string(rune('a'+i)), s...))
		vals = append(vals, randDense(r, s...))
	}
	out, err := build(in)
	if err != nil {
		b.Fatal(err)
	}
	p, err := Compile(g, in, []*gorgonia.Node{out})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := p.Run(context.Background(), vals...); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Run(context.Background(), vals...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(p.PeakBytes())/(1<<20), "peak-MiB")
}

// BenchmarkResnetBlock2D is small-sd's down_blocks.0.resnets.0 at 256×256 (latents 32×32, CFG
// batch 2): two 3×3 convolutions of 320 channels, ≈7.6 GFLOP.
func BenchmarkResnetBlock2D(b *testing.B) {
	rb, err := NewResnetBlock2D(weights.NewSynthetic().View(), 320, ResnetBlock2DConfig{Out: 320, TembChannels: 1280, Eps: 1e-5})
	if err != nil {
		b.Fatal(err)
	}
	benchProgram(b, [][]int{{2, 320, 32, 32}, {2, 1280}}, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
		return rb.Forward(in[0], in[1])
	})
}

// BenchmarkTransformer2DModel is small-sd's down_blocks.0.attentions.0 at 256×256 and 512×512
// (1024 and 4096 tokens of 320, 8 heads, 77 text tokens of 768, CFG batch 2), with float32,
// fp16 and bf16 weights.
func BenchmarkTransformer2DModel(b *testing.B) {
	syn := weights.NewSynthetic().View()
	for _, f := range []struct {
		name string
		w    weights.View
	}{{"fp32", syn}, {"fp16", syn.Half()}, {"bf16", syn.BF16()}} {
		tr, err := NewTransformer2DModel(f.w, Transformer2DConfig{InChannels: 320, Heads: 8, HeadDim: 40, CrossDim: 768})
		if err != nil {
			b.Fatal(err)
		}
		for _, size := range []int{32, 64} {
			b.Run(fmt.Sprintf("%s/%dx%d", f.name, size, size), func(b *testing.B) {
				benchProgram(b, [][]int{{2, 320, size, size}, {2, 77, 768}}, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
					return tr.Forward(in[0], in[1])
				})
			})
		}
	}
}
