//go:build !amd64

package kernels

func expAVX2(dst, src *float32, n int) { panic("kernels: AVX2 path on a non-amd64 build") }
