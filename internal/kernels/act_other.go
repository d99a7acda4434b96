//go:build !amd64

package kernels

func actSigmulAVX2(dst, src *float32, n int, k float32) {
	panic("kernels: AVX2 path on a non-amd64 build")
}
func actGELUAVX2(dst, src *float32, n int)      { panic("kernels: AVX2 path on a non-amd64 build") }
func actGEGLUAVX2(dst, a, gate *float32, n int) { panic("kernels: AVX2 path on a non-amd64 build") }

func actGEGLU512(dst, a, gate *float32, n int) { panic("kernels: AVX-512 path on a non-amd64 build") }
