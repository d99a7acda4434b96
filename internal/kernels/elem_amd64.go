package kernels

// elemAddAVX2 sets dst[i] = a[i] + b[i] for i < n (a multiple of 8).
//
//go:noescape
func elemAddAVX2(dst, a, b *float32, n int)

// elemScaleAVX2 sets dst[i] = src[i]·s for i < n (a multiple of 8).
//
//go:noescape
func elemScaleAVX2(dst, src *float32, n int, s float32)

// elemAddScalarAVX2 sets dst[i] = src[i] + b for i < n (a multiple of 8).
//
//go:noescape
func elemAddScalarAVX2(dst, src *float32, n int, b float32)

// elemAddRepeatAVX2 sets dst[i] = a[i] + b[i mod m] for i < n (n a multiple of m, m of 8).
//
//go:noescape
func elemAddRepeatAVX2(dst, a, b *float32, n, m int)

// elemDup2AVX2 sets d[2i] = d[2i+1] = s[i] for i < n (a multiple of 8).
//
//go:noescape
func elemDup2AVX2(d, s *float32, n int)

// elemTranspose8AVX2 transposes a rows×cols block (multiples of 8) of src (row stride lds) into
// dst (row stride ldd).
//
//go:noescape
func elemTranspose8AVX2(dst, src *float32, rows, cols, lds, ldd int)
