package nn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/smallsd/smallsd/internal/golden"
	"github.com/smallsd/smallsd/weights"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// affineTK is a test kernel, y = a·x + b element-wise, so executor tests depend on no kernels.
type affineTK struct{ A, B float32 }

func (k affineTK) run(dst []float32, src [][]float32) error {
	for i, v := range src[0] {
		dst[i] = k.A*v + k.B
	}
	return nil
}

// sumTK adds its inputs element-wise.
type sumTK struct{}

func (sumTK) run(dst []float32, src [][]float32) error {
	for i := range dst {
		var s float32
		for _, x := range src {
			s += x[i]
		}
		dst[i] = s
	}
	return nil
}

type aliasTK struct{}

func (aliasTK) run(dst []float32, src [][]float32) error { copy(dst, src[0]); return nil }
func (aliasTK) offset() int                              { return 0 }

func randDense(r *rand.Rand, shape ...int) *tensor.Dense {
	d := make([]float32, shapeSize(shape))
	for i := range d {
		d[i] = float32(r.NormFloat64())
	}
	return tensor.New(tensor.WithShape(shape...), tensor.WithBacking(d))
}

func input(g *gorgonia.ExprGraph, name string, shape ...int) *gorgonia.Node {
	return gorgonia.NewTensor(g, tensor.Float32, len(shape), gorgonia.WithShape(shape...), gorgonia.WithName(name))
}

func mustApply(t testing.TB, name string, k kernel, out tensor.Shape, in ...*gorgonia.Node) *gorgonia.Node {
	t.Helper()
	n, err := apply(name, k, out, in...)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// chain builds x → a1 → a2 → … → a_depth with a residual sum every third step and returns the
// output, a tap in the middle and the float64 reference function.
func chain(t testing.TB, g *gorgonia.ExprGraph, x *gorgonia.Node, depth int) (out, tap *gorgonia.Node, ref func([]float32) (out, tap []float64)) {
	shape := x.Shape()
	h := x
	var skip *gorgonia.Node
	for i := 0; i < depth; i++ {
		k := affineTK{A: 1 + float32(i)/8, B: float32(i) / 4}
		h = mustApply(t, "affine", k, shape, h)
		if i%3 == 0 {
			skip = h
		}
		if i%3 == 2 {
			h = mustApply(t, "sum", sumTK{}, shape, h, skip)
		}
		if i == depth/2 {
			tap = h
		}
	}
	ref = func(x []float32) (out, tap []float64) {
		res := make([]float64, len(x))
		tp := make([]float64, len(x))
		for j, v := range x {
			h := float64(v)
			var skip float64
			for i := 0; i < depth; i++ {
				h = float64(1+float32(i)/8)*h + float64(float32(i)/4)
				if i%3 == 0 {
					skip = h
				}
				if i%3 == 2 {
					h += skip
				}
				if i == depth/2 {
					tp[j] = h
				}
			}
			res[j] = h
		}
		return res, tp
	}
	return h, tap, ref
}

// maxAbsDiff returns max|got−want| divided by max(1, max|want|).
func maxAbsDiff(got []float32, want []float64) float64 {
	m, scale := 0.0, 1.0
	for i := range want {
		m = max(m, math.Abs(float64(got[i])-want[i]))
		scale = max(scale, math.Abs(want[i]))
	}
	return m / scale
}

func TestProgramChain(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	g := gorgonia.NewGraph()
	x := input(g, "x", 2, 3, 8, 8)
	out, tap, ref := chain(t, g, x, 12)
	p, err := Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{out, tap})
	if err != nil {
		t.Fatal(err)
	}
	xv := randDense(r, 2, 3, 8, 8)
	xCopy := append([]float32(nil), xv.Data().([]float32)...)
	wantOut, wantTap := ref(xCopy)

	var first []float32
	for run := 0; run < 3; run++ {
		res, err := p.Run(context.Background(), xv)
		if err != nil {
			t.Fatal(err)
		}
		got := res[0].Data().([]float32)
		e := maxAbsDiff(got, wantOut)
		et := maxAbsDiff(res[1].Data().([]float32), wantTap)
		// 1.4e-7 and 1.1e-7 measured
		if !golden.Within(t, fmt.Sprintf("run %d: output", run), "max rel", e, 1e-6) ||
			!golden.Within(t, fmt.Sprintf("run %d: tap", run), "max rel", et, 1e-6) {
			t.FailNow()
		}
		if !res[0].Shape().Eq(tensor.Shape{2, 3, 8, 8}) {
			t.Fatalf("output shape %v", res[0].Shape())
		}
		if first == nil {
			first = append([]float32(nil), got...)
		} else {
			for i := range got {
				if got[i] != first[i] {
					t.Fatalf("run %d differs from run 0 at %d: %v vs %v", run, i, got[i], first[i])
				}
			}
		}
	}
	for i, v := range xv.Data().([]float32) {
		if v != xCopy[i] {
			t.Fatalf("input modified at %d", i)
		}
	}
	naive := int64(0)
	for _, n := range g.AllNodes() {
		if n.Op() != nil {
			naive += int64(shapeSize(n.Shape())) * 4
		}
	}
	t.Logf("peak live %d B, buffers %d B, naive sum of intermediates %d B", p.PeakBytes(), p.BufferBytes(), naive)
	if p.PeakBytes() >= naive/2 || p.BufferBytes() < p.PeakBytes() {
		t.Fatalf("peak %d, buffers %d, naive %d", p.PeakBytes(), p.BufferBytes(), naive)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := p.Run(context.Background(), xv); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per Run after warm-up: %v", allocs)
	if allocs != 0 {
		t.Fatalf("Run allocates %v times", allocs)
	}
}

func TestProgramErrors(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	g := gorgonia.NewGraph()
	x := input(g, "latents", 1, 4, 4, 4)
	out, _, _ := chain(t, g, x, 5)
	p, err := Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{out})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Run(context.Background(), randDense(r, 1, 4, 4, 5))
	t.Logf("wrong shape: %v", err)
	if err == nil || !strings.Contains(err.Error(), "latents") {
		t.Fatalf("wrong input shape: error %v, want one naming the input", err)
	}
	if _, err = p.Run(context.Background()); err == nil {
		t.Fatal("missing input accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = p.Run(ctx, randDense(r, 1, 4, 4, 4))
	t.Logf("cancelled: %v", err)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: error %v", err)
	}
	// An unbound leaf that is not an input cannot run.
	y := input(g, "y", 1, 4, 4, 4)
	s := mustApply(t, "sum", sumTK{}, tensor.Shape{1, 4, 4, 4}, out, y)
	if _, err := Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{s}); err == nil || !strings.Contains(err.Error(), "y") {
		t.Fatalf("unbound leaf: error %v", err)
	}
}

// TestProgramForeignAndFixed mixes a gorgonia built-in op, a weight-like bound leaf and a view.
func TestProgramForeignAndFixed(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	g := gorgonia.NewGraph()
	x := input(g, "x", 3, 4)
	wv := randDense(r, 3, 4)
	wCopy := append([]float32(nil), wv.Data().([]float32)...)
	w := gorgonia.NewTensor(g, tensor.Float32, 2, gorgonia.WithShape(3, 4), gorgonia.WithName("w"), gorgonia.WithValue(wv))
	a := mustApply(t, "affine", affineTK{A: 2, B: 1}, tensor.Shape{3, 4}, x)
	v := mustApply(t, "alias", aliasTK{}, tensor.Shape{4, 3}, a)
	back := mustApply(t, "alias", aliasTK{}, tensor.Shape{3, 4}, v)
	b := gorgonia.Must(gorgonia.Add(back, w)) // built-in
	c := mustApply(t, "affine", affineTK{A: -1, B: 0}, tensor.Shape{3, 4}, b)
	p, err := Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{c, v})
	if err != nil {
		t.Fatal(err)
	}
	xv := randDense(r, 3, 4)
	for run := 0; run < 2; run++ {
		res, err := p.Run(context.Background(), xv)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float64, 12)
		for i, xi := range xv.Data().([]float32) {
			want[i] = -(2*float64(xi) + 1 + float64(wCopy[i]))
		}
		e := maxAbsDiff(res[0].Data().([]float32), want)
		if !golden.Within(t, fmt.Sprintf("run %d: built-in Add mixed in", run), "max abs", e, 1e-6) { // 8.9e-8 measured
			t.FailNow()
		}
		if !res[1].Shape().Eq(tensor.Shape{4, 3}) {
			t.Fatalf("view output shape %v", res[1].Shape())
		}
	}
	for i, v := range wv.Data().([]float32) {
		if v != wCopy[i] {
			t.Fatalf("bound weight modified at %d", i)
		}
	}
}

// TestOpHashCoversParameters checks that gorgonia does not merge two ops that differ only in a
// parameter, and does merge identical ones.
func TestOpHashCoversParameters(t *testing.T) {
	g := gorgonia.NewGraph()
	x := input(g, "x", 2, 2)
	a := mustApply(t, "affine", affineTK{A: 1, B: 2}, tensor.Shape{2, 2}, x)
	b := mustApply(t, "affine", affineTK{A: 1, B: 3}, tensor.Shape{2, 2}, x)
	c := mustApply(t, "affine", affineTK{A: 1, B: 2}, tensor.Shape{2, 2}, x)
	if a == b {
		t.Fatal("ops with different parameters merged")
	}
	if a != c {
		t.Fatal("identical ops not merged")
	}
}

// TestProgramLayersNoAlloc runs real layers (ResNet block, Transformer2DModel, attention) and
// checks Run allocates nothing after warm-up and that PeakBytes beats keeping every value.
func TestProgramLayersNoAlloc(t *testing.T) {
	r := rand.New(rand.NewSource(5))
	w := weights.NewSynthetic().View()
	res, err := NewResnetBlock2D(w.Sub("res"), 16, ResnetBlock2DConfig{Out: 32, TembChannels: 24, Groups: 8})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTransformer2DModel(w.Sub("tr"), Transformer2DConfig{InChannels: 32, Heads: 4, HeadDim: 8, CrossDim: 12, Groups: 8})
	if err != nil {
		t.Fatal(err)
	}
	up, err := NewUpsample2D(w.Sub("up"), 32, 16)
	if err != nil {
		t.Fatal(err)
	}
	g := gorgonia.NewGraph()
	x, temb, ctx := input(g, "x", 2, 16, 8, 8), input(g, "temb", 2, 24), input(g, "ctx", 2, 7, 12)
	h, err := res.Forward(x, temb)
	if err == nil {
		h, err = tr.Forward(h, ctx)
	}
	if err == nil {
		h, err = up.Forward(h)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(g, []*gorgonia.Node{x, temb, ctx}, []*gorgonia.Node{h})
	if err != nil {
		t.Fatal(err)
	}
	vals := []*tensor.Dense{randDense(r, 2, 16, 8, 8), randDense(r, 2, 24), randDense(r, 2, 7, 12)}
	// Snapshot every bound value (the weights) and the inputs to check nothing writes into them.
	var bound [][]float32
	var boundCopy [][]float32
	for _, n := range g.AllNodes() {
		if d, ok := n.Value().(*tensor.Dense); ok && n.Op() == nil {
			bound = append(bound, d.Float32s())
			boundCopy = append(boundCopy, append([]float32(nil), d.Float32s()...))
		}
	}
	for _, v := range vals {
		bound = append(bound, v.Float32s())
		boundCopy = append(boundCopy, append([]float32(nil), v.Float32s()...))
	}
	defer func() {
		for i := range bound {
			for j := range bound[i] {
				if bound[i][j] != boundCopy[i][j] {
					t.Fatalf("weight or input %d modified at %d", i, j)
				}
			}
		}
		t.Logf("%d weights and inputs unchanged after the runs", len(bound))
	}()
	first, err := p.Run(context.Background(), vals...)
	if err != nil {
		t.Fatal(err)
	}
	want := append([]float32(nil), first[0].Float32s()...)
	allocs := testing.AllocsPerRun(10, func() {
		if _, err := p.Run(context.Background(), vals...); err != nil {
			t.Fatal(err)
		}
	})
	got, _ := p.Run(context.Background(), vals...)
	for i, v := range got[0].Float32s() {
		if v != want[i] {
			t.Fatalf("run differs from the first at %d", i)
		}
	}
	naive := int64(0)
	for _, n := range g.AllNodes() {
		if n.Op() != nil {
			naive += int64(shapeSize(n.Shape())) * 4
		}
	}
	// The kernels may allocate (internal/kernels' business); the executor must add nothing.
	kernelAllocs := 0.0
	for _, st := range p.steps {
		if _, isView := st.k.(viewKernel); isView {
			continue
		}
		args := make([][]float32, len(st.args))
		for i, a := range st.args {
			args[i] = p.data[a]
		}
		kernelAllocs += testing.AllocsPerRun(10, func() { _ = st.k.run(p.data[st.val], args) })
	}
	t.Logf("%d ops: allocations per Run %v, of which the kernels called directly %v; peak live %d B, buffers %d B, all intermediates %d B",
		len(p.steps), allocs, kernelAllocs, p.PeakBytes(), p.BufferBytes(), naive)
	switch {
	case raceBuild:
		t.Log("allocation counts not checked: sync.Pool drops items at random under -race")
	case allocs > kernelAllocs:
		t.Errorf("Run allocates %v times after warm-up, the kernels alone %v", allocs, kernelAllocs)
	}
	if p.PeakBytes() >= naive {
		t.Errorf("peak %d not below the sum of intermediates %d", p.PeakBytes(), naive)
	}
}

// TestKernelOpsDoNotMerge: the same input through ops differing in one parameter must stay
// separate nodes (gorgonia hash-conses identical ones).
func TestKernelOpsDoNotMerge(t *testing.T) {
	g := gorgonia.NewGraph()
	x := input(g, "x", 2, 8, 4, 4)
	gm, bt := input(g, "gamma", 8), input(g, "beta", 8)
	var nodes []*gorgonia.Node
	for _, c := range []struct {
		groups int
		eps    float32
		silu   bool
	}{{4, 1e-5, false}, {4, 1e-6, false}, {2, 1e-5, false}, {4, 1e-5, true}} {
		n, err := GroupNormalize(x, gm, bt, c.groups, c.eps, c.silu)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	s1, _ := Scale(x, 0.5)
	s2, _ := Scale(x, 0.25)
	r1, _ := Reshape(x, 16, 16)
	r2, _ := Reshape(x, 4, 64)
	sl1, _ := SliceBatch(x, 0, 1)
	sl2, _ := SliceBatch(x, 1, 2)
	nodes = append(nodes, s1, s2, r1, r2, sl1, sl2)
	for i := range nodes {
		for j := range i {
			if nodes[i] == nodes[j] {
				t.Errorf("nodes %d (%v) and %d (%v) merged", i, nodes[i].Op(), j, nodes[j].Op())
			}
		}
	}
	again, _ := GroupNormalize(x, gm, bt, 4, 1e-6, false)
	if again != nodes[1] {
		t.Error("identical groupnorm nodes did not merge")
	}
}

// TestProgramInPlace checks that in-place reuse never clobbers a tap, an input, or a value still
// read through a view.
func TestProgramInPlace(t *testing.T) {
	r := rand.New(rand.NewSource(9))
	g := gorgonia.NewGraph()
	x := input(g, "x", 2, 3, 4)
	must := func(n *gorgonia.Node, err error) *gorgonia.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	a := must(Scale(x, 2))      // tapped: must survive
	b := must(SiLU(a))          // may not overwrite a (a is an output)
	c := must(Add(b, b))        // may overwrite b
	v := must(Reshape(c, 6, 4)) // view of c, read at the end
	d := must(Scale(c, 0.5))    // must not overwrite c: v is still to be read
	e := must(Add(d, must(Reshape(v, 2, 3, 4))))
	f := must(GELU(e)) // may overwrite e
	p, err := Compile(g, []*gorgonia.Node{x}, []*gorgonia.Node{f, a})
	if err != nil {
		t.Fatal(err)
	}
	xv := randDense(r, 2, 3, 4)
	res, err := p.Run(context.Background(), xv)
	if err != nil {
		t.Fatal(err)
	}
	xa := arrOf(xv)
	wa := xa.map1(func(v float64) float64 { return 2 * v })
	wc := wa.map1(func(v float64) float64 { return 2 * refSiLU(v) })
	wf := refAdd(wc.map1(func(v float64) float64 { return v / 2 }), wc).map1(refGELU)
	checkClose(t, "in-place chain output", res[0], wf, 1e-6)
	checkClose(t, "in-place chain tap", res[1], wa, 1e-7)
	inPlace := 0
	for _, st := range p.steps {
		for _, arg := range st.args {
			if p.vals[arg].kind == kindComputed && p.vals[st.val].kind == kindComputed && p.vals[arg].slot == p.vals[st.val].slot {
				inPlace++
			}
		}
	}
	t.Logf("%d ops ran in place; peak %d B", inPlace, p.PeakBytes())
	if inPlace == 0 {
		t.Error("no op ran in place")
	}
}
