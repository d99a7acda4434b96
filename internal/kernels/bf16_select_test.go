package kernels

import (
	"strings"
	"testing"
	"time"
)

// TestBF16Select checks the measurement that decides whether the VDPBF16PS kernels run
// (bf16_select.go): it gives rates and a reason where the CPU has AVX512-BF16, is quick, agrees
// with BF16Status, and bf16Force overrides it both ways.
func TestBF16Select(t *testing.T) {
	on, why := BF16Status()
	t.Logf("BF16Status: on=%v: %s", on, why)
	if why == "" {
		t.Error("BF16Status gives no reason")
	}
	g := bf16Check()
	if !(useBF16 && useAVX2 && useAVX512) {
		if on || g.err == nil {
			t.Errorf("no AVX512-BF16 path, yet on=%v err=%v", on, g.err)
		}
		t.Skip("CPU lacks AVX512-BF16 (or it is switched off): no measurement")
	}
	if g.err != nil || !(g.dot > 0 && g.fma > 0) || !strings.Contains(why, "GFLOP/s") {
		t.Fatalf("measurement: %+v (%s)", g, why)
	}
	if g.forced == "" && g.on != (g.dot >= bf16MinGain*g.fma) {
		t.Errorf("decision %v does not follow the rates %.0f / %.0f", g.on, g.dot, g.fma)
	}
	if on != g.on {
		t.Errorf("BF16Status on=%v, measured %v", on, g.on)
	}
	t0 := time.Now()
	dot, fma := bf16Measure()
	d := time.Since(t0)
	t.Logf("again: VDPBF16PS %.0f, FMA %.0f GFLOP/s (%.2f×), measured in %v", dot, fma, dot/fma, d)
	if d > 20*time.Millisecond { // about 0.5 ms unloaded
		t.Errorf("the measurement took %v", d)
	}
	sf := bf16Force
	defer func() { bf16Force = sf }()
	for _, f := range []int{1, -1} {
		bf16Force = f
		if got := bf16Kernels(); got != (f == 1) {
			t.Errorf("bf16Force %d: bf16Kernels %v", f, got)
		}
	}
}
