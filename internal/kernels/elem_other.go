//go:build !amd64

package kernels

const elemNoAVX2 = "kernels: AVX2 path on a non-amd64 build"

func elemAddAVX2(dst, a, b *float32, n int)                          { panic(elemNoAVX2) }
func elemScaleAVX2(dst, src *float32, n int, s float32)              { panic(elemNoAVX2) }
func elemAddScalarAVX2(dst, src *float32, n int, b float32)          { panic(elemNoAVX2) }
func elemAddRepeatAVX2(dst, a, b *float32, n, m int)                 { panic(elemNoAVX2) }
func elemDup2AVX2(d, s *float32, n int)                              { panic(elemNoAVX2) }
func elemTranspose8AVX2(dst, src *float32, rows, cols, lds, ldd int) { panic(elemNoAVX2) }
