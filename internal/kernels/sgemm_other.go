//go:build !amd64

package kernels

// sgemmKernel runs the plain-Go micro-kernel (no assembly on this architecture).
func sgemmKernel(_ bool, kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	sgemmKernelGeneric(kc, a, b, c, ldc, alpha, beta)
}

// sgemmKernelDirect runs the plain-Go in-place-A micro-kernel.
func sgemmKernelDirect(_ bool, kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32) {
	sgemmKernelDirectGeneric(kc, a, lda, b, c, ldc, alpha, beta)
}

func sgemmKernelNarrow(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	panic("kernels: AVX2 path on a non-amd64 build")
}

func sgemmKernelDirectNarrow(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32) {
	panic("kernels: AVX2 path on a non-amd64 build")
}

// packBT16 has no assembly transposer here.
func packBT16(d, src []float32, ld, kc int) bool { return false }

// packBN16 has no assembly copier here.
func packBN16(d, src []float32, ld, kc int) bool { return false }
