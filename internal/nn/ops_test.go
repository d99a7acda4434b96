package nn

import (
	"context"
	"fmt"
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// checkClose compares got with the float64 reference: max|got−want| ≤ tol·max(1, max|want|),
// logged in golden.Check's form.
func checkClose(t *testing.T, label string, got *tensor.Dense, want arr, tol float64) {
	t.Helper()
	if !got.Shape().Eq(tensor.Shape(want.shape)) {
		t.Errorf("%s: shape %v, want %v", label, got.Shape(), want.shape)
		return
	}
	golden.Check(t, label, got.Float32s()[:got.Size()], &golden.Tensor{Name: label, Shape: want.shape, Data: want.d}, tol)
}

// runNode builds one output node from fresh inputs holding vals, runs it through the executor
// and through the node's Op.Do, checks they agree exactly, and returns the executor's result.
func runNode(t *testing.T, build func(in []*gorgonia.Node) (*gorgonia.Node, error), vals ...*tensor.Dense) *tensor.Dense {
	t.Helper()
	g := gorgonia.NewGraph()
	var in []*gorgonia.Node
	for i, v := range vals {
		in = append(in, input(g, string(rune('a'+i)), v.Shape()...))
	}
	out, err := build(in)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(g, in, []*gorgonia.Node{out})
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), vals...)
	if err != nil {
		t.Fatal(err)
	}
	if op, ok := out.Op().(*Op); ok {
		var args []gorgonia.Value
		for _, c := range children(g, out) {
			if v := valueOf(c, in, vals); v != nil {
				args = append(args, v)
			}
		}
		if len(args) < op.Arity() {
			return res[0] // an input is computed: Op.Do is checked on single-op graphs only
		}
		dv, err := op.Do(args...)
		if err != nil {
			t.Fatal(err)
		}
		a, b := dv.(*tensor.Dense).Float32s()[:res[0].Size()], res[0].Float32s()[:res[0].Size()]
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("Op.Do and the executor differ at %d: %v vs %v", i, a[i], b[i])
			}
		}
	}
	return res[0]
}

// valueOf returns the value of a direct child: an input's bound value or a weight's.
func valueOf(c *gorgonia.Node, in []*gorgonia.Node, vals []*tensor.Dense) gorgonia.Value {
	for i, n := range in {
		if n == c {
			return vals[i]
		}
	}
	if c.Op() != nil {
		return nil
	}
	return c.Value()
}

func TestOpsAgainstFloat64(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	rnd := func(shape ...int) *tensor.Dense { return randDense(r, shape...) }
	// Tolerances relative to max(1, max|ref|), about 10× the largest error measured on the
	// AVX-512 and AVX2 paths: tol for the sums (linear, conv, attention: up to 2.5e-7),
	// elemTol for the norms and activations (up to 1.0e-7).
	const tol, elemTol = 3e-6, 1e-6

	t.Run("linear", func(t *testing.T) {
		x, w, b := rnd(2, 5, 7), rnd(3, 7), rnd(3)
		got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Affine(in[0], in[1], in[2]) }, x, w, b)
		checkClose(t, "linear+bias", got, refLinear(arrOf(x), arrOf(w), arrOf(b)), tol)
		got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Affine(in[0], in[1], nil) }, x, w)
		checkClose(t, "linear", got, refLinear(arrOf(x), arrOf(w), arr{}), tol)
	})
	for _, c := range []struct{ k, stride, pad int }{{3, 1, 1}, {3, 2, 1}, {3, 2, 0}, {1, 1, 0}} {
		x, w, b := rnd(2, 3, 9, 7), rnd(4, 3, c.k, c.k), rnd(4)
		got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Conv(in[0], in[1], in[2], c.stride, c.pad) }, x, w, b)
		checkClose(t, fmt.Sprintf("conv2d k%d stride %d pad %d", c.k, c.stride, c.pad), got, refConv(arrOf(x), arrOf(w), arrOf(b), c.stride, c.pad), tol)
	}
	t.Run("pad2d", func(t *testing.T) {
		x := rnd(2, 3, 4, 5)
		got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Pad2D(in[0], 1, 2, 0, 3) }, x)
		checkClose(t, "pad2d", got, refPad(arrOf(x), 1, 2, 0, 3), 0)
	})
	t.Run("norms", func(t *testing.T) {
		x, gm, bt := rnd(2, 8, 5, 3), rnd(8), rnd(8)
		for _, silu := range []bool{false, true} {
			got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
				return GroupNormalize(in[0], in[1], in[2], 4, 1e-5, silu)
			}, x, gm, bt)
			want := refGroupNorm(arrOf(x), arrOf(gm), arrOf(bt), 4, 1e-5)
			if silu {
				want = want.map1(refSiLU)
			}
			checkClose(t, "groupnorm silu="+map[bool]string{false: "no", true: "yes"}[silu], got, want, elemTol)
		}
		y, lg, lb := rnd(3, 4, 10), rnd(10), rnd(10)
		got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return LayerNormalize(in[0], in[1], in[2], 1e-5) }, y, lg, lb)
		checkClose(t, "layernorm", got, refLayerNorm(arrOf(y), arrOf(lg), arrOf(lb), 1e-5), elemTol)
	})
	t.Run("activations", func(t *testing.T) {
		x := rnd(3, 50)
		for name, f := range map[string]func(float64) float64{"silu": refSiLU, "gelu": refGELU, "quick_gelu": refQuickGELU, "swish": refSiLU} {
			got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Activation(name, in[0]) }, x)
			checkClose(t, name, got, arrOf(x).map1(f), elemTol)
		}
		got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return GEGLU(in[0]) }, x)
		checkClose(t, "geglu", got, refGEGLU(arrOf(x)), elemTol)
		if _, err := Activation("relu6", input(gorgonia.NewGraph(), "x", 2)); err == nil {
			t.Error("unknown activation accepted")
		}
	})
	t.Run("elementwise", func(t *testing.T) {
		a, b := rnd(2, 3, 4, 4), rnd(2, 3, 4, 4)
		got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Add(in[0], in[1]) }, a, b)
		checkClose(t, "add", got, refAdd(arrOf(a), arrOf(b)), 1e-7)
		pos := rnd(4, 4)
		got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return AddBroadcast(in[0], in[1]) }, a, pos)
		wantB := arrOf(a)
		for i := range wantB.d {
			wantB.d[i] += arrOf(pos).d[i%16]
		}
		checkClose(t, "add_broadcast", got, wantB, 1e-7)
		got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Scale(in[0], 0.25) }, a)
		checkClose(t, "scale", got, arrOf(a).map1(func(v float64) float64 { return v * 0.25 }), 1e-7)
		for _, bias := range []*tensor.Dense{rnd(2, 3), rnd(3)} {
			got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return AddChannelBias(in[0], in[1]) }, a, bias)
			checkClose(t, fmt.Sprintf("add_channel_bias %v", bias.Shape()), got, refChannelBias(arrOf(a), arrOf(bias)), 1e-7)
		}
		got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Upsample2x(in[0]) }, a)
		checkClose(t, "upsample", got, refUpsample(arrOf(a)), 0)
		for _, sz := range [][2]int{{8, 8}, {7, 9}, {3, 4}, {4, 4}} {
			got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return ResizeNearest(in[0], sz[0], sz[1]) }, a)
			checkClose(t, fmt.Sprintf("resize_nearest to %v", sz), got, refResize(arrOf(a), sz[0], sz[1]), 0)
		}
	})
	t.Run("layout", func(t *testing.T) {
		a, b, c := rnd(2, 3, 2, 5), rnd(2, 1, 2, 5), rnd(2, 4, 2, 5)
		for _, ins := range [][]*tensor.Dense{{a, b}, {a, b, c}} {
			got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Concat(in...) }, ins...)
			want := newArr(2, 0, 2, 5)
			for n := 0; n < 2; n++ {
				for _, x := range ins {
					per := x.Size() / 2
					want.d = append(want.d, arrOf(x).d[n*per:(n+1)*per]...)
				}
			}
			for _, x := range ins {
				want.shape[1] += x.Shape()[1]
			}
			checkClose(t, "concat", got, want, 0)
		}
		got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return ToTokens(in[0]) }, a)
		checkClose(t, "to_tokens", got, refToTokens(arrOf(a)), 0)
		tok := rnd(2, 10, 3)
		got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return FromTokens(in[0], 2, 5) }, tok)
		checkClose(t, "from_tokens", got, refFromTokens(arrOf(tok), 2, 5), 0)
		got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Reshape(in[0], 6, 10) }, a)
		checkClose(t, "reshape", got, arr{shape: []int{6, 10}, d: arrOf(a).d}, 0)
		got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return SliceBatch(in[0], 1, 2) }, a)
		checkClose(t, "slice_batch", got, arr{shape: []int{1, 3, 2, 5}, d: arrOf(a).d[30:]}, 0)
	})
	t.Run("attention", func(t *testing.T) {
		q, k, v := rnd(2, 9, 12), rnd(2, 5, 12), rnd(2, 5, 12)
		got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Attend(in[0], in[1], in[2], 3, 0.5, false) }, q, k, v)
		checkClose(t, "cross attention 3 heads", got, refAttention(arrOf(q), arrOf(k), arrOf(v), 3, 0.5, false), tol)
		k2, v2 := rnd(2, 9, 12), rnd(2, 9, 12)
		got = runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Attend(in[0], in[1], in[2], 2, 0.3, true) }, q, k2, v2)
		checkClose(t, "causal self attention 2 heads", got, refAttention(arrOf(q), arrOf(k2), arrOf(v2), 2, 0.3, true), tol)
	})
	t.Run("timesteps", func(t *testing.T) {
		ts := tensor.New(tensor.WithShape(3), tensor.WithBacking([]float32{981, 500, 1}))
		for _, c := range []struct {
			dim   int
			flip  bool
			shift float32
		}{{32, true, 0}, {33, false, 1}} {
			got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) {
				return TimestepEmbed(in[0], c.dim, c.flip, c.shift, 1, 10000)
			}, ts)
			// float32 frequencies times t ≈ 1000 lose ~1e-4 absolutely, as in torch.
			checkClose(t, "timestep embedding", got, refTimesteps([]float64{981, 500, 1}, c.dim, c.flip, float64(c.shift)), 2e-4)
		}
	})
	t.Run("embedding", func(t *testing.T) {
		table := rnd(6, 4)
		ids := tensor.New(tensor.WithShape(2, 3), tensor.WithBacking([]float32{0, 5, 2, 2, 1, 3}))
		got := runNode(t, func(in []*gorgonia.Node) (*gorgonia.Node, error) { return Embed(in[0], in[1]) }, ids, table)
		want := newArr(2, 3, 4)
		for i, id := range []int{0, 5, 2, 2, 1, 3} {
			copy(want.d[i*4:], arrOf(table).d[id*4:id*4+4])
		}
		checkClose(t, "embedding", got, want, 0)
		g := gorgonia.NewGraph()
		in, tb := input(g, "ids", 2), input(g, "table", 6, 4)
		e, err := Embed(in, tb)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Compile(g, []*gorgonia.Node{in, tb}, []*gorgonia.Node{e})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Run(context.Background(), tensor.New(tensor.WithShape(2), tensor.WithBacking([]float32{1, 6})), table)
		t.Logf("id out of range: %v", err)
		if err == nil {
			t.Error("token id 6 of a 6-row table accepted")
		}
	})
}

// TestOpShapeErrors checks that mismatched shapes are errors when nodes are built.
func TestOpShapeErrors(t *testing.T) {
	g := gorgonia.NewGraph()
	x := input(g, "x", 2, 3, 4, 4)
	bad := []struct {
		name string
		f    func() (*gorgonia.Node, error)
	}{
		{"linear", func() (*gorgonia.Node, error) { return Affine(x, input(g, "w", 5, 3), nil) }},
		{"conv", func() (*gorgonia.Node, error) { return Conv(x, input(g, "cw", 5, 2, 3, 3), nil, 1, 1) }},
		{"groupnorm", func() (*gorgonia.Node, error) {
			return GroupNormalize(x, input(g, "g", 3), input(g, "b", 3), 2, 1e-5, false)
		}},
		{"add", func() (*gorgonia.Node, error) { return Add(x, input(g, "y", 2, 3, 4, 5)) }},
		{"bias", func() (*gorgonia.Node, error) { return AddChannelBias(x, input(g, "cb", 4)) }},
		{"concat", func() (*gorgonia.Node, error) { return Concat(x, input(g, "z", 2, 3, 4, 5)) }},
		{"reshape", func() (*gorgonia.Node, error) { return Reshape(x, 5, 5) }},
		{"attention", func() (*gorgonia.Node, error) {
			q := input(g, "q", 2, 4, 6)
			return Attend(q, q, q, 4, 1, false)
		}},
	}
	for _, b := range bad {
		_, err := b.f()
		t.Logf("%s: %v", b.name, err)
		if err == nil {
			t.Errorf("%s: mismatched shapes accepted", b.name)
		}
	}
}
