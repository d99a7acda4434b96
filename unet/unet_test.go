package unet

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/tensor"
)

// tol is the tolerance of the UNet's output (relative to max(1, max|ref|), as golden.Check
// applies it): about 10× the largest error measured on the AVX-512 and AVX2 paths (1.3e-6).
const tol = 2e-5

// tapTols holds each tap's tolerance, about 10× the largest error measured on either path
// (given beside it), so a regression in one block cannot hide under the output's margin.
var tapTols = map[string]float64{
	"time_proj":                                             2e-5, // 1.9e-6: sin/cos of 981·frequency in float32
	"time_embedding":                                        5e-6, // 4.5e-7
	"conv_in":                                               3e-6, // 2.4e-7
	"down_blocks.0.resnets.0":                               5e-6, // 4.8e-7
	"down_blocks.0.attentions.0":                            6e-6, // 5.0e-7
	"down_blocks.0.attentions.0.norm":                       4e-6, // 3.6e-7
	"down_blocks.0.attentions.0.proj_in":                    6e-6, // 5.5e-7
	"down_blocks.0.attentions.0.transformer_blocks.0":       5e-6, // 4.6e-7
	"down_blocks.0.attentions.0.transformer_blocks.0.attn1": 2e-5, // 1.1e-6
	"down_blocks.0.attentions.0.transformer_blocks.0.attn2": 6e-6, // 5.2e-7
	"down_blocks.0.attentions.0.transformer_blocks.0.ff":    2e-5, // 1.3e-6
	"down_blocks.0.downsamplers.0":                          9e-6, // 8.9e-7
	"down_blocks.0":                                         9e-6, // 8.9e-7
	"down_blocks.1":                                         1e-5, // 9.9e-7
	"down_blocks.2":                                         2e-5, // 1.3e-6
	"down_blocks.3":                                         2e-5, // 1.3e-6
	"mid_block.attentions.0":                                2e-5, // 1.2e-6
	"mid_block":                                             2e-5, // 1.3e-6
	"up_blocks.0.upsamplers.0":                              2e-5, // 1.2e-6
	"up_blocks.0":                                           2e-5, // 1.2e-6
	"up_blocks.1":                                           2e-5, // 1.2e-6
	"up_blocks.2":                                           2e-5, // 1.1e-6
	"up_blocks.3":                                           2e-5, // 1.2e-6
	"conv_norm_out":                                         2e-5, // 1.7e-6
}

func dense(ref *golden.Tensor) *tensor.Dense {
	return tensor.New(tensor.WithShape(ref.Shape...), tensor.WithBacking(ref.F32()))
}

func loadTiny(t *testing.T, folder string) *Model {
	t.Helper()
	m, err := Load(golden.Path(folder, "unet"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestGoldenTiny checks the tiny UNet against diffusers on a square and a non-square sample at
// t = 981 and t = 1.
func TestGoldenTiny(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	text := dense(f.Must(t, "text.last_hidden_state"))
	for _, c := range []string{"sq", "rect"} {
		sample := f.Must(t, "unet."+c+".sample")
		in := dense(sample)
		before := append([]float32(nil), in.Float32s()...)
		for _, ts := range []struct {
			name string
			t    float64
		}{{"t981", 981}, {"t1", 1}} {
			out, err := m.Forward(context.Background(), in, ts.t, text)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, "unet."+c+"."+ts.name+".out", out.Float32s(), f.Must(t, "unet."+c+"."+ts.name+".out"), tol)
		}
		for i, v := range in.Float32s() {
			if v != before[i] {
				t.Fatalf("%s: Forward modified its input at %d", c, i)
			}
		}
	}
}

// TestGoldenTinyTaps checks every recorded tap, so that a failure says which block breaks.
func TestGoldenTinyTaps(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	var taps []string
	for _, name := range f.Names() {
		if strings.HasPrefix(name, "tap.unet.") {
			taps = append(taps, strings.TrimPrefix(name, "tap.unet."))
		}
	}
	if len(taps) < 20 {
		t.Fatalf("only %d unet taps in the golden file", len(taps))
	}
	sort.Strings(taps)
	got, err := m.ForwardTaps(context.Background(), dense(f.Must(t, "unet.sq.sample")), 981,
		dense(f.Must(t, "text.last_hidden_state")), append(taps, "out"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range taps {
		ref := f.Must(t, "tap.unet."+name)
		if g := got[name]; !equalShape(g.Shape(), ref.Shape) {
			t.Errorf("tap %s: shape %v, reference %v", name, g.Shape(), ref.Shape)
			continue
		}
		lim, ok := tapTols[name]
		if !ok {
			t.Errorf("tap %s: no tolerance in tapTols", name)
		}
		golden.Check(t, "tap "+name, got[name].Float32s(), ref, lim)
	}
	golden.Check(t, "out (taps program)", got["out"].Float32s(), f.Must(t, "unet.sq.t981.out"), tol)
}

func equalShape(a tensor.Shape, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestBinMatchesSafetensors loads the same weights from the .bin pickle and compares outputs
// bit for bit.
func TestBinMatchesSafetensors(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	text := dense(f.Must(t, "text.last_hidden_state"))
	sample := dense(f.Must(t, "unet.rect.sample"))
	var outs [2][]float32
	for i, folder := range []string{"tiny-sd", "tiny-sd-bin"} {
		m := loadTiny(t, folder)
		out, err := m.Forward(context.Background(), sample, 981, text)
		if err != nil {
			t.Fatal(err)
		}
		outs[i] = out.Float32s()
	}
	for i := range outs[0] {
		if outs[0][i] != outs[1][i] {
			t.Fatalf("element %d: safetensors %v, bin %v", i, outs[0][i], outs[1][i])
		}
	}
	t.Logf("%d outputs identical", len(outs[0]))
}

// TestBatchOne runs each sample of the reference batch on its own (batch 1, no guidance).
func TestBatchOne(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m := loadTiny(t, "tiny-sd")
	text := f.Must(t, "text.last_hidden_state")
	for _, c := range []string{"sq", "rect"} {
		sample, ref := f.Must(t, "unet."+c+".sample"), f.Must(t, "unet."+c+".t1.out")
		for i := 0; i < 2; i++ {
			one := func(r *golden.Tensor) *golden.Tensor {
				n := len(r.Data) / r.Shape[0]
				shape := append([]int{1}, r.Shape[1:]...)
				return &golden.Tensor{Name: r.Name, Shape: shape, Data: r.Data[i*n : (i+1)*n]}
			}
			out, err := m.Forward(context.Background(), dense(one(sample)), 1, dense(one(text)))
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, fmt.Sprintf("unet.%s.t1.out[%d] (batch 1)", c, i), out.Float32s(), one(ref), tol)
		}
	}
}

// TestHalfWeights loads the tiny UNet keeping its weight matrices as fp16 (weights.WithHalf):
// the result moves only by the rounding of the weights.
func TestHalfWeights(t *testing.T) {
	f := golden.MustOpen(t, golden.Path("tiny-sd-golden.safetensors"))
	m, err := Load(golden.Path("tiny-sd", "unet"), weights.WithHalf())
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	out, err := m.Forward(context.Background(), dense(f.Must(t, "unet.sq.sample")), 981, dense(f.Must(t, "text.last_hidden_state")))
	if err != nil {
		t.Fatal(err)
	}
	// fp16 weights carry a relative rounding error of 2⁻¹¹: 1.1e-3 of max|ref| measured.
	golden.Check(t, "unet.sq.t981.out with fp16 weights", out.Float32s(), f.Must(t, "unet.sq.t981.out"), 1e-2)
}
