package kernels

// expAVX2 sets dst[i] = e^src[i] for i < n; n must be a multiple of 8.
//
//go:noescape
func expAVX2(dst, src *float32, n int)
