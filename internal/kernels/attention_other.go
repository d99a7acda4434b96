//go:build !amd64

package kernels

func attnDotAVX2(rows, d int, q, kp, s *float32, lds int) {
	panic("kernels: AVX2 path on a non-amd64 build")
}
func attnAccumAVX2(rows, nk, dp int, s, v, o *float32) {
	panic("kernels: AVX2 path on a non-amd64 build")
}
func attnSoftmaxAVX2(s *float32, nq, n int, m, l, o *float32, dp int) {
	panic("kernels: AVX2 path on a non-amd64 build")
}

func attnPrefetch(p *float32, rows, stride, n int) {}
