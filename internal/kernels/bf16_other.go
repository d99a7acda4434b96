//go:build !amd64

package kernels

const cpuHasBF16 = false

func bf16Kernel512(rows, kc int, a, b, c []float32, off0, off1, ldc int, alpha, beta float32, bias []float32, mode int) {
	panic("kernels: AVX512-BF16 path on a non-amd64 build")
}

func bf16PairRows(dst *uint32, src *float32, n int) {
	panic("kernels: AVX512-BF16 path on a non-amd64 build")
}

func bf16Round(dst *uint16, src *float32, n int) {
	panic("kernels: AVX512-BF16 path on a non-amd64 build")
}

// bf16Kernel runs the plain-Go bf16 micro-kernel (no assembly on this architecture).
func bf16Kernel(_ bool, kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	bf16KernelGeneric(kc, a, b, c, ldc, alpha, beta)
}

func bf16Pair2Rows(dst *uint32, even, odd *float32, n int) {
	panic("kernels: AVX512-BF16 path on a non-amd64 build")
}

func bf16Kernel512Direct(rows, kc int, a []uint32, lda int, b []uint32, c []float32, off0, off1, ldc int, alpha, beta float32, bias []float32, mode int) {
	panic("kernels: AVX512-BF16 path on a non-amd64 build")
}

func bf16Kernel6x16DirectAny(kc int, a []uint32, lda int, b []uint32, c []float32, ldc int, beta float32) {
	panic("kernels: AVX512-BF16 path on a non-amd64 build")
}

func bf16ProbeRun(dot bool, n int) {
	panic("kernels: AVX512-BF16 probe on a non-amd64 build")
}
