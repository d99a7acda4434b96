//go:build !amd64

package kernels

const normNoAVX2 = "kernels: AVX2 path on a non-amd64 build"

func normMomentsAVX2(x *float32, n int, shift float64) (s1, s2 float64) { panic(normNoAVX2) }
func normAffineAVX2(x, y *float32, n int, m, s, b float32, silu bool)   { panic(normNoAVX2) }
func normRowAVX2(x, y, gamma, beta *float32, n int, m, s float32)       { panic(normNoAVX2) }
