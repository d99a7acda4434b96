package nn

import (
	"context"
	"math"
	"math/rand"
	"path/filepath"
	"testing"

	"github.com/smallsd/smallsd/weights"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// roundedStore returns a Store holding, under the names of params, the float32 values of each
// param rounded to fp16 (bf16 if set) and widened back: the weights a half layer computes with.
func roundedStore(t *testing.T, bf16 bool, params ...Param) *weights.Store {
	t.Helper()
	m := map[string]*tensor.Dense{}
	for _, p := range params {
		pt := p.Dense()
		src := pt.Float32s()[:pt.Size()]
		d := make([]float32, len(src))
		for i, v := range src {
			d[i] = weights.HalfToFloat32(weights.Float32ToHalf(v))
			if bf16 {
				d[i] = math.Float32frombits(uint32(weights.Float32ToBF16(v)) << 16)
			}
		}
		m[p.Name] = tensor.New(tensor.WithShape(pt.Shape()...), tensor.WithBacking(d))
	}
	s, err := weights.FromTensors("rounded", m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkSame compares a half layer's output with the float32 layer's on the rounded weights: the
// kernels widen halves exactly, so only the blocking of the sums may differ (float32 rounding,
// 1e-5 × max(1, max|want|)). It logs how many values differ at all.
func checkSame(t *testing.T, label string, got, want *tensor.Dense) {
	t.Helper()
	g, w := got.Float32s()[:got.Size()], want.Float32s()[:want.Size()]
	diff := 0
	for i := range g {
		if g[i] != w[i] {
			diff++
		}
	}
	t.Logf("%s: half weights vs float32 layer on the rounded weights: %d of %d values differ", label, diff, len(g))
	checkClose(t, label+" vs float32 layer on the rounded weights", got, arrOf(want), 1e-5)
}

// TestHalfLayers builds Linear and Conv2d layers from a View preferring half weights and checks
// that they hold fp16 matrices (half the bytes), compute exactly what the float32 layers compute
// on the rounded weights, and agree with the float64 reference on those weights. With bf16
// weights the layers hold bf16 matrices and, where the CPU has AVX512-BF16, round their inputs
// to bf16 too: they agree with the float32 layers on the rounded weights to bf16's precision
// (the kernels' tests check the arithmetic exactly).
func TestHalfLayers(t *testing.T) {
	for _, bf := range []bool{false, true} {
		testHalfLayers(t, bf)
	}
}

func testHalfLayers(t *testing.T, bf bool) {
	r := rand.New(rand.NewSource(5))
	syn := weights.NewSynthetic().View()
	prefer := func(v weights.View) weights.View {
		if bf {
			return v.BF16()
		}
		return v.Half()
	}
	for _, c := range []struct {
		name    string
		in, out int
		bias    bool
		xShape  []int
		k, s, p int // conv kernel, stride, padding; k = 0 for a Linear
	}{
		{name: "lin", in: 19, out: 37, bias: true, xShape: []int{3, 5, 19}},
		{name: "lin_nobias", in: 64, out: 40, xShape: []int{2, 77, 64}},
		{name: "conv3", in: 5, out: 17, xShape: []int{2, 5, 9, 7}, k: 3, s: 1, p: 1},
		{name: "conv3s2", in: 8, out: 6, xShape: []int{1, 8, 10, 10}, k: 3, s: 2, p: 1},
		{name: "conv1", in: 12, out: 20, xShape: []int{2, 12, 4, 4}, k: 1, s: 1, p: 0},
	} {
		var half, full, ref func(x *gorgonia.Node) (*gorgonia.Node, error)
		var refLayer func(x arr) arr
		var hp, fp Param
		if c.k == 0 {
			h, err := NewLinear(prefer(syn.Sub(c.name)), c.in, c.out, c.bias)
			if err != nil {
				t.Fatal(err)
			}
			f, err := NewLinear(syn.Sub(c.name), c.in, c.out, c.bias)
			if err != nil {
				t.Fatal(err)
			}
			rs := roundedStore(t, bf, f.Weight) // the bias stays float32, unrounded
			rl := &Linear{Weight: Param{Name: f.Weight.Name, T: mustTensor(t, rs, f.Weight.Name)}, Bias: f.Bias, In: c.in, Out: c.out}
			half, full, ref = h.Forward, f.Forward, rl.Forward
			refLayer = func(x arr) arr { return refLinearL(rl, x) }
			hp, fp = h.Weight, f.Weight
			if h.Bias.Half != nil || (c.bias && h.Bias.T == nil) {
				t.Errorf("%s: the bias is not float32", c.name)
			}
		} else {
			h, err := NewConv2d(prefer(syn.Sub(c.name)), c.in, c.out, c.k, c.s, c.p)
			if err != nil {
				t.Fatal(err)
			}
			f, err := NewConv2d(syn.Sub(c.name), c.in, c.out, c.k, c.s, c.p)
			if err != nil {
				t.Fatal(err)
			}
			rs := roundedStore(t, bf, f.Weight)
			rc := *f
			rc.Weight = Param{Name: f.Weight.Name, T: mustTensor(t, rs, f.Weight.Name)}
			half, full, ref = h.Forward, f.Forward, rc.Forward
			refLayer = func(x arr) arr { return refConvL(&rc, x) }
			hp, fp = h.Weight, f.Weight
		}
		if !is16(hp, bf) {
			t.Fatalf("%s: the half layer's weight is not held as 16-bit floats of the format asked for (bf16 %v)", c.name, bf)
		}
		// Packed float32 panels may hold padding; bf16 pair panels (packBF16) up to 15 rows and a
		// k step of it.
		limit := fp.Bytes() / 2
		if hp.Half != nil && hp.Half.Pairs != nil {
			pw := hp.Half.Pairs
			limit = 4 * int64(pw.Rows+15) * int64((pw.Cols+1)/2)
		}
		if hp.Bytes() == 0 || hp.Bytes() > limit {
			t.Errorf("%s: half weight holds %d bytes (limit %d), float32 %d", c.name, hp.Bytes(), limit, fp.Bytes())
		}
		x := randDense(r, c.xShape...)
		one := func(f func(*gorgonia.Node) (*gorgonia.Node, error)) *tensor.Dense {
			return runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return f(in[0]) }, x)
		}
		got, exact, unrounded := one(half), one(ref), one(full)
		if bf { // bf16 rounds the activations too (2.4e-3 and 3.0e-3 measured on AVX512-BF16)
			checkClose(t, c.name+" bf16 vs float32 layer on the rounded weights", got, arrOf(exact), 1e-2)
			checkClose(t, c.name+" bf16 vs float32 weights", got, arrOf(unrounded), 2e-2)
			continue
		}
		checkSame(t, c.name, got, exact)
		checkClose(t, c.name+" vs float64 on the rounded weights", got, refLayer(arrOf(x)), 4e-6) // 3.3e-7 measured
		// Against the unrounded float32 layer the rounding of the weights shows (fp16 keeps 11
		// bits): 2.8e-4 measured.
		checkClose(t, c.name+" vs float32 weights", got, arrOf(unrounded), 3e-3)
	}
}

func mustTensor(t *testing.T, s *weights.Store, name string) *tensor.Dense {
	t.Helper()
	d, err := s.Tensor(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestHalfResnet builds a whole ResnetBlock2D from a half View: every conv and linear weight is
// half, every norm weight and bias float32, and the output is close to the float32 block's.
func TestHalfResnet(t *testing.T) {
	r := rand.New(rand.NewSource(6))
	w := weights.NewSynthetic().View().Sub("res")
	cfg := ResnetBlock2DConfig{Out: 16, TembChannels: 12, Groups: 4, Eps: 1e-5}
	h, err := NewResnetBlock2D(w.Half(), 8, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f, err := NewResnetBlock2D(w, 8, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Param{h.Conv1.Weight, h.Conv2.Weight, h.TimeEmbProj.Weight, h.ConvShortcut.Weight} {
		if !is16(p, false) {
			t.Errorf("%s is not half", p.Name)
		}
	}
	for _, p := range []Param{h.Norm1.Weight, h.Norm2.Bias, h.Conv1.Bias, h.TimeEmbProj.Bias} {
		if p.T == nil || p.Half != nil {
			t.Errorf("%s is not float32", p.Name)
		}
	}
	x, temb := randDense(r, 2, 8, 6, 6), randDense(r, 2, 12)
	run := func(b *ResnetBlock2D) *tensor.Dense {
		return runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return b.Forward(in[0], in[1]) }, x, temb)
	}
	checkClose(t, "ResnetBlock2D half vs float32 weights", run(h), arrOf(run(f)), 3e-3) // 2.9e-4 measured
}

// is16 reports whether p is held as 16-bit floats: IEEE half (as bits, or packed at load) or, with
// bf, bfloat16 bits.
func is16(p Param, bf bool) bool {
	if p.T != nil {
		return false
	}
	if p.Packed != nil {
		return !bf && p.Packed.Half()
	}
	return p.Half != nil && p.Half.BF16 == bf
}

// TestHalfNoMerge checks that half layers with different weights stay distinct nodes, and that
// one half layer applied twice to the same input merges.
func TestHalfNoMerge(t *testing.T) {
	w := weights.NewSynthetic().View().Half()
	a, err := NewLinear(w.Sub("a"), 4, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewLinear(w.Sub("b"), 4, 4, false)
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
		t.Fatal("half linears with different weights merged")
	}
	if ya2, _ := a.Forward(x); ya2 != ya {
		t.Error("the same half layer applied twice to the same input did not merge")
	}
}

// TestHalfShapeErrors checks AffineHalf and ConvHalf reject mismatched inputs with errors.
func TestHalfShapeErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	x := input(g, "x", 2, 5)
	w := &HalfWeight{Name: "w", Bits: make([]uint16, 12), Shape: tensor.Shape{3, 4}}
	if _, err := AffineHalf(x, w, nil); err == nil {
		t.Error("AffineHalf accepted a 2×5 input for a 3×4 weight")
	}
	if _, err := AffineHalf(input(g, "x4", 2, 4), &HalfWeight{Name: "bad", Bits: make([]uint16, 5), Shape: tensor.Shape{3, 4}}, nil); err == nil {
		t.Error("AffineHalf accepted 5 values for a 3×4 weight")
	}
	if _, err := AffineHalf(input(g, "x4b", 2, 4), w, input(g, "b", 4)); err == nil {
		t.Error("AffineHalf accepted a bias of 4 for 3 outputs")
	}
	cw := &HalfWeight{Name: "cw", Bits: make([]uint16, 2*3*3*3), Shape: tensor.Shape{2, 3, 3, 3}}
	if _, err := ConvHalf(input(g, "img", 1, 4, 5, 5), cw, nil, 1, 1); err == nil {
		t.Error("ConvHalf accepted 4 input channels for a 3-channel weight")
	}
	if _, err := ConvHalf(input(g, "img2", 1, 3, 1, 1), cw, nil, 1, 0); err == nil {
		t.Error("ConvHalf accepted an input smaller than the kernel")
	}
	if _, err := ConvHalf(input(g, "img3", 1, 3, 5, 5), cw, nil, 0, 1); err == nil {
		t.Error("ConvHalf accepted stride 0")
	}
}

// An embedding table stored as fp16 and read from a View preferring half weights stays 16-bit
// (aliasing the file): lookups and Table give exactly the float32 widening's values.
func TestEmbeddingHalfKeepsStoredHalves(t *testing.T) {
	dir := filepath.Join("..", "..", "testdata", "tiny-sd", "text_encoder")
	open := func(opts ...weights.Option) weights.View {
		s, err := weights.Open(dir, append([]weights.Option{weights.WithVariant("fp16")}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s.View().Sub("text_model.embeddings")
	}
	halfV, fullV := open(weights.WithHalf()), open()
	for _, name := range []string{"token_embedding", "position_embedding"} {
		shape, ok := fullV.Sub(name).Shape("weight")
		if !ok {
			t.Fatalf("%s: no weight", name)
		}
		h, err := NewEmbedding(halfV.Sub(name), shape[0], shape[1])
		if err != nil {
			t.Fatal(err)
		}
		f, err := NewEmbedding(fullV.Sub(name), shape[0], shape[1])
		if err != nil {
			t.Fatal(err)
		}
		if h.Weight.Half == nil || h.Weight.T != nil {
			t.Fatalf("%s: the fp16 table was widened to float32", name)
		}
		ids := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{0, 5, float32(shape[0] - 1), 7, 7, 1}))
		look := func(e *Embedding) *tensor.Dense {
			return runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return e.Forward(in[0]) }, ids)
		}
		table := func(e *Embedding) *tensor.Dense {
			return runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
				return Add(in[0], e.Table(in[0].Graph()))
			}, tensor.New(tensor.WithShape(shape...), tensor.WithBacking(make([]float32, shape[0]*shape[1]))))
		}
		for _, c := range []struct {
			what      string
			got, want *tensor.Dense
		}{{"lookup", look(h), look(f)}, {"table", table(h), table(f)}} {
			g, w := c.got.Float32s(), c.want.Float32s()
			for i := range w {
				if g[i] != w[i] {
					t.Fatalf("%s %s: value %d is %v, the float32 table's %v", name, c.what, i, g[i], w[i])
				}
			}
		}
	}
	bad := tensor.New(tensor.WithShape(1, 1), tensor.WithBacking([]float32{1e6}))
	shape, _ := fullV.Sub("token_embedding").Shape("weight")
	if h, err := NewEmbedding(halfV.Sub("token_embedding"), shape[0], shape[1]); err != nil {
		t.Fatal(err)
	} else {
		g := gorgonia.NewGraph()
		x := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(1, 1), gorgonia.WithName("ids"))
		y, err := h.Forward(x)
		if err == nil {
			var p *Program
			if p, err = Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{y}); err == nil {
				_, err = p.Run(context.Background(), bad)
			}
		}
		if err == nil {
			t.Error("an id out of range: no error")
		}
	}
}
