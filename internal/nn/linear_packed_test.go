package nn

import (
	"context"
	"fmt"
	"github.com/smallsd/smallsd/internal/kernels"
	"math"
	"math/rand"
	"slices"
	"strings"
	"sync"
	"testing"

	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/smallsd/smallsd/weights"
)

// TestLinearPackedReplaces checks that NewLinear keeps only the packed panels of a float32 or
// IEEE half weight (the row-major matrix is dropped, not doubled) and leaves bf16 bits alone.
func TestLinearPackedReplaces(t *testing.T) {
	syn := weights.NewSynthetic().View().Sub("l")
	for _, c := range []struct {
		name  string
		view  weights.View
		bytes int64
	}{{"fp32", syn, 4 * 48 * 19}, {"fp16", syn.Half(), 2 * 48 * 19}} {
		l, err := NewLinear(c.view, 19, 37, true)
		if err != nil {
			t.Fatal(err)
		}
		if l.Weight.T != nil || l.Weight.Half != nil || l.Weight.Packed == nil {
			t.Errorf("%s: weight not replaced by its packed panels: %+v", c.name, l.Weight)
		} else if got := l.Weight.Bytes(); got != c.bytes {
			t.Errorf("%s: packed weight holds %d bytes, want %d (37 outputs padded to 48)", c.name, got, c.bytes)
		}
		if l.Bias.T == nil {
			t.Errorf("%s: bias not float32", c.name)
		}
	}
	l, err := NewLinear(syn.BF16(), 19, 37, false)
	if err != nil {
		t.Fatal(err)
	}
	if l.Weight.Packed != nil || l.Weight.Half == nil || !l.Weight.Half.BF16 {
		t.Errorf("bf16 weight packed at load: %+v", l.Weight)
	}
	// A fused Linear keeps only the packed panels of the stacked matrix.
	for _, c := range []struct {
		name  string
		view  weights.View
		bytes int64
	}{{"fp32", syn, 4 * 3 * 32 * 19}, {"fp16", syn.Half(), 2 * 3 * 32 * 19}, {"bf16", syn.BF16(), 2 * 3 * 32 * 19}} {
		l, err := NewFusedLinear([]weights.View{c.view.Sub("q"), c.view.Sub("k"), c.view.Sub("v")}, 19, 32, false)
		if err != nil {
			t.Fatal(err)
		}
		if c.name == "bf16" && kernels.BF16Native() { // bf16 pair panels (packBF16): 19 inputs in 10 pairs
			c.bytes = 4 * 3 * 32 * 10
			if l.Weight.Half == nil || l.Weight.Half.Pairs == nil {
				t.Errorf("fused bf16: weight not packed into pair panels: %+v", l.Weight)
			}
		}
		if got := l.Weight.Bytes(); got != c.bytes || l.Weight.T != nil || (l.Weight.Packed == nil) != (c.name == "bf16") {
			t.Errorf("fused %s: weight %+v of %d bytes, want %d bytes packed (bf16: as bits)", c.name, l.Weight, got, c.bytes)
		}
		if want := []string{"l.q.weight", "l.k.weight", "l.v.weight"}; !slices.Equal(l.Parts, want) {
			t.Errorf("fused %s: parts %q, want %q", c.name, l.Parts, want)
		}
	}
}

// TestFusedLinearParts checks that each part of a fused Linear gives what the layer gives on its
// own, bit for bit (float32, fp16 and bf16 weights, with and without biases: with 40 inputs, one
// k block either way, the products are the same), and that Forward refuses a fused Linear.
func TestFusedLinearParts(t *testing.T) {
	syn := weights.NewSynthetic().View().Sub("l")
	r := rand.New(rand.NewSource(7))
	x := randDense(r, 2, 13, 40)
	var worst float64
	for _, c := range []struct {
		name string
		view weights.View
	}{{"fp32", syn}, {"fp16", syn.Half()}, {"bf16", syn.BF16()}} {
		for _, bias := range []bool{false, true} {
			names := []string{"q", "k", "v"}
			var views []weights.View
			var want []float32
			for _, n := range names {
				views = append(views, c.view.Sub(n))
				l, err := NewLinear(c.view.Sub(n), 40, 48, bias)
				if err != nil {
					t.Fatal(err)
				}
				y, err := linearOnce(l, x)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, y...)
			}
			l, err := NewFusedLinear(views, 40, 48, bias)
			if err != nil {
				t.Fatal(err)
			}
			got, err := linearOnce(l, x)
			if err != nil {
				t.Fatal(err)
			}
			var d float64
			for i := range got {
				d = max(d, math.Abs(float64(got[i]-want[i])))
			}
			worst = max(worst, d)
			if !(d == 0) {
				t.Errorf("%s bias=%v: parts differ from the layers by %g", c.name, bias, d)
			}
			if _, err := l.Forward(input(gorgonia.NewGraph(), "x", 2, 13, 40)); err == nil || !strings.Contains(err.Error(), "ForwardParts") {
				t.Errorf("%s: Forward on a fused Linear: err = %v", c.name, err)
			}
		}
	}
	t.Logf("fused parts vs separate layers: largest difference %.3g (must be 0)", worst)
	if _, err := NewFusedLinear([]weights.View{syn.Sub("q"), syn.Sub("k")}, 40, 24, false); err == nil {
		t.Error("parts of 24 columns: no error")
	}
}

// linearOnce compiles and runs l on x, without a testing.T (for goroutines).
func linearOnce(l *Linear, x *tensor.Dense) ([]float32, error) {
	g := gorgonia.NewGraph()
	in := input(g, "x", x.Shape()...)
	outs, err := l.ForwardParts(in)
	if err != nil {
		return nil, err
	}
	p, err := Compile(g, []*gorgonia.Node{in}, outs)
	if err != nil {
		return nil, err
	}
	res, err := p.Run(context.Background(), x)
	if err != nil {
		return nil, err
	}
	var y []float32 // the parts one after another
	for _, r := range res {
		y = append(y, r.Float32s()[:r.Size()]...)
	}
	return y, nil
}

// TestReleasePackedRepacks checks that a Linear whose packed weight ReleasePacked dropped packs
// it again, from the weights it was built from, on its next Forward, giving the same values bit
// for bit, also while other goroutines run it and release it (go test -race).
func TestReleasePackedRepacks(t *testing.T) {
	syn := weights.NewSynthetic().View().Sub("l")
	r := rand.New(rand.NewSource(3))
	x := randDense(r, 5, 19)
	for _, c := range []struct {
		name  string
		view  weights.View
		fused bool
	}{{"fp32", syn, false}, {"fp16", syn.Half(), false}, {"fp32 fused", syn, true}, {"fp16 fused", syn.Half(), true}} {
		l, err := NewLinear(c.view, 19, 37, true)
		if c.fused {
			l, err = NewFusedLinear([]weights.View{c.view.Sub("a"), c.view.Sub("b")}, 19, 32, true)
		}
		if err != nil {
			t.Fatal(err)
		}
		want, err := linearOnce(l, x)
		if err != nil {
			t.Fatal(err)
		}
		bytes := l.Weight.Bytes()
		if n := ReleasePacked(l); n != bytes || l.Weight.Packed != nil {
			t.Fatalf("%s: ReleasePacked dropped %d bytes (packed %v), want %d", c.name, n, l.Weight.Packed != nil, bytes)
		}
		if n := ReleasePacked(l); n != 0 {
			t.Errorf("%s: a second ReleasePacked dropped %d bytes, want 0", c.name, n)
		}
		got, err := linearOnce(l, x)
		if err != nil {
			t.Fatal(err)
		}
		if l.Weight.Packed == nil || l.Weight.Bytes() != bytes {
			t.Errorf("%s: not packed again (%d bytes)", c.name, l.Weight.Bytes())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: the layer packed again gives other values", c.name)
		}

		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for i := 0; i < 4; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				got, err := linearOnce(l, x)
				if err == nil && !slices.Equal(got, want) {
					err = fmt.Errorf("%s: other values while released concurrently", c.name)
				}
				if err != nil {
					errs <- err
				}
			}()
			go func() { defer wg.Done(); ReleasePacked(l) }()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	}
}

// TestLinearGEGLU checks that ForwardGEGLU gives what Forward then GEGLU give, bit for bit (each
// row's product does not depend on the rows computed with it), for float32, fp16 and bf16
// weights, with its op run whole and in blocks of 7 rows.
func TestLinearGEGLU(t *testing.T) {
	syn := weights.NewSynthetic().View().Sub("ff")
	r := rand.New(rand.NewSource(11))
	x := randDense(r, 2, 25, 40)
	for _, c := range []struct {
		name string
		view weights.View
	}{{"fp32", syn}, {"fp16", syn.Half()}, {"bf16", syn.BF16()}} {
		l, err := NewLinear(c.view, 40, 2*24, true)
		if err != nil {
			t.Fatal(err)
		}
		run := func(f func(*gorgonia.Node) (*gorgonia.Node, error)) ([]float32, *gorgonia.Node) {
			g := gorgonia.NewGraph()
			in := input(g, "x", x.Shape()...)
			out, err := f(in)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Compile(g, []*gorgonia.Node{in}, []*gorgonia.Node{out})
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Run(context.Background(), x)
			if err != nil {
				t.Fatal(err)
			}
			return append([]float32(nil), res[0].Float32s()[:res[0].Size()]...), out
		}
		want, _ := run(func(in *gorgonia.Node) (*gorgonia.Node, error) {
			h, err := l.Forward(in)
			if err != nil {
				return nil, err
			}
			return GEGLU(h)
		})
		got, out := run(l.ForwardGEGLU)
		if !out.Shape().Eq(tensor.Shape{2, 25, 24}) {
			t.Errorf("%s: result of shape %v, want (2, 25, 24)", c.name, out.Shape())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: ForwardGEGLU differs from Forward then GEGLU", c.name)
		}
		// The op itself, in blocks of 7 rows (the last one short).
		k := linearGEGLUK{Rows: 50, Block: 7, In: 40, Out: 48, Bias: true, W: l.Weight.Packed, H: l.Weight.Half}
		dst := make([]float32, 50*24+7*48)
		if err := k.run(dst, [][]float32{x.Float32s(), l.Bias.T.Float32s()}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(dst[:50*24], want) {
			t.Errorf("%s: the op in blocks of 7 rows differs from Forward then GEGLU", c.name)
		}
	}
}
