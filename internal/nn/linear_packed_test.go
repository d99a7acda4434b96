package nn

import (
	"testing"

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
