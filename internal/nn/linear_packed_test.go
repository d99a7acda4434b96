package nn

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
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
}

// linearOnce compiles and runs l on x, without a testing.T (for goroutines).
func linearOnce(l *Linear, x *tensor.Dense) ([]float32, error) {
	g := gorgonia.NewGraph()
	in := input(g, "x", x.Shape()...)
	out, err := l.Forward(in)
	if err != nil {
		return nil, err
	}
	p, err := Compile(g, []*gorgonia.Node{in}, []*gorgonia.Node{out})
	if err != nil {
		return nil, err
	}
	res, err := p.Run(context.Background(), x)
	if err != nil {
		return nil, err
	}
	return res[0].Float32s()[:res[0].Size()], nil
}

// TestReleasePackedRepacks checks that a Linear whose packed weight ReleasePacked dropped packs
// it again, from the weights it was built from, on its next Forward, giving the same values bit
// for bit, also while other goroutines run it and release it (go test -race).
func TestReleasePackedRepacks(t *testing.T) {
	syn := weights.NewSynthetic().View().Sub("l")
	r := rand.New(rand.NewSource(3))
	x := randDense(r, 5, 19)
	for _, c := range []struct {
		name string
		view weights.View
	}{{"fp32", syn}, {"fp16", syn.Half()}} {
		l, err := NewLinear(c.view, 19, 37, true)
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
