package kernels

// actSigmulAVX2 sets dst[i] = x/(1 + e^(−k·x)) for x = src[i], i < n (a multiple of 8).
//
//go:noescape
func actSigmulAVX2(dst, src *float32, n int, k float32)

// actGELUAVX2 sets dst[i] = gelu(src[i]) for i < n (a multiple of 8).
//
//go:noescape
func actGELUAVX2(dst, src *float32, n int)

// actGEGLUAVX2 sets dst[i] = a[i]·gelu(gate[i]) for i < n (a multiple of 8).
//
//go:noescape
func actGEGLUAVX2(dst, a, gate *float32, n int)

// actGEGLU512 is actGEGLUAVX2 on 16 lanes (n a multiple of 16), bit for bit the same results.
//
//go:noescape
func actGEGLU512(dst, a, gate *float32, n int)
