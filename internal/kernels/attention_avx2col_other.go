//go:build !amd64

package kernels

func attnQKTAVX2(np, d int, q, k, s *float32) {
	panic("kernels: AVX2 path on a non-amd64 build")
}
func attnPVTAVX2(nk, nc, ldv int, p, v, o *float32) {
	panic("kernels: AVX2 path on a non-amd64 build")
}
func attnSoftmaxTAVX2(s *float32, n int, m, l, o *float32, nc int) {
	panic("kernels: AVX2 path on a non-amd64 build")
}
func attnLoadQTAVX2(q *float32, ldq, nq, d int, scale float32, qt *float32) {
	panic("kernels: AVX2 path on a non-amd64 build")
}
func attnStoreOTAVX2(o, l *float32, nq, d int, out *float32, ldo int) {
	panic("kernels: AVX2 path on a non-amd64 build")
}

// attnAVX2Col is empty: useAVX2 is false here.
var attnAVX2Col [7]attnColKernels
