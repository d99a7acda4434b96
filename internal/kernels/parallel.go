package kernels

import (
	"runtime"
	"sync"
)

// workers is how many goroutines a kernel splits its work into.
func workers() int { return runtime.GOMAXPROCS(0) }

// parallelFor calls fn on disjoint ranges [lo, hi) that cover [0, n), running the ranges on up to
// GOMAXPROCS goroutines. grain is the smallest range worth a goroutine of its own; n ≤ grain runs
// inline, so small problems pay no scheduling cost.
func parallelFor(n, grain int, fn func(lo, hi int)) {
	if n <= 0 {
		return
	}
	if grain < 1 {
		grain = 1
	}
	w := workers()
	if max := (n + grain - 1) / grain; w > max {
		w = max
	}
	if w <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	wg.Add(w - 1)
	chunk := (n + w - 1) / w
	for i := 1; i < w; i++ {
		lo, hi := i*chunk, (i+1)*chunk
		if hi > n {
			hi = n
		}
		go func() {
			defer wg.Done()
			if lo < hi {
				fn(lo, hi)
			}
		}()
	}
	hi := chunk
	if hi > n {
		hi = n
	}
	fn(0, hi)
	wg.Wait()
}

// ParallelFor calls fn on disjoint ranges [lo, hi) covering [0, n) on up to GOMAXPROCS
// goroutines, ranges of at least grain items (n ≤ grain runs inline), and returns when all are
// done: the kernels' own work splitting, for the memory-bound loops of the layers above them.
func ParallelFor(n, grain int, fn func(lo, hi int)) { parallelFor(n, grain, fn) }
