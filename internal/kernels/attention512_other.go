//go:build !amd64

package kernels

func attnQKT512(np, d int, q, k, s *float32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnPVT512(nk, nc, ldv int, p, v, o *float32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnSoftmaxT512(s *float32, n int, m, l, o *float32, nc int) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnQKT512BF16(np, d int, q, k *uint32, s *float32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnPVT512BF16(nk, nc, ldv int, p, v *uint32, o *float32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnSoftmaxT512BF16(s *float32, n int, m, l, o *float32, nc int, p *uint32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnLoadQT512(q *float32, ldq, nq, d int, scale float32, qt *float32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnLoadQT512BF16(q *float32, ldq, nq, d int, scale float32, qt *uint32) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
func attnStoreOT512(o, l *float32, nq, d int, out *float32, ldo int) {
	panic("kernels: AVX-512 path on a non-amd64 build")
}
