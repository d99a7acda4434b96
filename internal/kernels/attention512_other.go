//go:build !amd64

package kernels

func attnDot512(rows, d int, q, kp, s *float32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnAccum512(rows, nk, dp int, s, v, o *float32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnSoftmax512(s *float32, nq, n int, m, l, o *float32, dp int) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
