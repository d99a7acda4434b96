//go:build !amd64

package kernels

func sgemmKernel512(rows, kc int, a, b, c []float32, off0, off1, ldc int, alpha, beta float32, bias []float32, mode int) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}

func sgemmKernel512Direct(rows, kc int, a []float32, lda int, b, c []float32, off0, off1, ldc int, alpha, beta float32, bias []float32, mode int, pf []float32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
