//go:build !amd64

package kernels

func winoInput(dst []float32, ld int, strip []float32, ldr, nt int) {
	winoInputGo(dst, ld, strip, ldr, nt)
}

func winoOutput(dst []float32, ldo int, m []float32, ld, nt int, bias float32) {
	winoOutputGo(dst, ldo, m, ld, nt, bias)
}

func winoFilters(dst []float32, ld int, w []float32, nt int) { winoFiltersGo(dst, ld, w, nt) }
