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

const tol = 1e-4

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
		golden.Check(t, "tap "+name, got[name].Float32s(), ref, tol)
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
	// fp16 weights carry a relative rounding error of 2⁻¹¹; through the whole UNet that stays
	// well within 1e-2 of the float32 reference.
	golden.Check(t, "unet.sq.t981.out with fp16 weights", out.Float32s(), f.Must(t, "unet.sq.t981.out"), 1e-2)
}
