package kernels

import (
	"math/rand"
	"runtime"
	"testing"
)

// TestSgemmConvAllocs checks that after warm-up the kernels allocate nothing on one core (pack
// buffers come from pools). On more cores parallelFor's goroutine closures cost a few small
// allocations per call, which the test reports.
func TestSgemmConvAllocs(t *testing.T) {
	if sgemmRace {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	r := rand.New(rand.NewSource(5))
	m, n, k := 70, 90, 300
	a, b, c := sgemmRandSlice(r, m*k), sgemmRandSlice(r, k*n), make([]float32, m*n)
	p := ConvParams{N: 2, C: 8, H: 20, W: 20, K: 16, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	oh, ow := p.OutSize()
	x, w, bias, y := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9), sgemmRandSlice(r, p.K), make([]float32, p.N*p.K*oh*ow)
	lb := sgemmRandSlice(r, n)
	bigM, bigN, bigK := 512, 256, 256
	ba, bb, bc := sgemmRandSlice(r, bigM*bigK), sgemmRandSlice(r, bigK*bigN), make([]float32, bigM*bigN)
	wh, _ := sgemmRandHalf(r, n*k)
	ch, _ := sgemmRandHalf(r, len(w))
	run := func() {
		LinearF16(a, m, k, wh, n, lb, c)
		Conv2DF16(p, x, ch, bias, y)
		Sgemm(false, true, m, n, k, 1, a, k, b, k, 0, c, n)
		Sgemm(false, false, bigM, bigN, bigK, 1, ba, bigK, bb, bigN, 0, bc, bigN)
		Conv2D(p, x, w, bias, y)
		Linear(a, m, k, b, n, lb, c)
	}
	run()
	// testing.AllocsPerRun pins GOMAXPROCS to 1.
	if allocs := testing.AllocsPerRun(20, run); allocs != 0 {
		t.Errorf("GOMAXPROCS=1: %.1f allocations per run, want 0", allocs)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const runs = 20
	for i := 0; i < runs; i++ {
		run()
	}
	runtime.ReadMemStats(&after)
	t.Logf("GOMAXPROCS=1: 0 allocations; GOMAXPROCS=%d: %.1f allocations per run of 6 kernel calls",
		runtime.GOMAXPROCS(0), float64(after.Mallocs-before.Mallocs)/runs)
}
