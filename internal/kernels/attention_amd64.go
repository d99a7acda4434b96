package kernels

// attnDotAVX2 is the assembly form of attnDot (one 16-key panel of scores, rows a multiple of 6).
//
//go:noescape
func attnDotAVX2(rows, d int, q, kp, s *float32, lds int)

// attnAccumAVX2 is the assembly form of attnAccum (rows a multiple of 6, dp a multiple of 8).
//
//go:noescape
func attnAccumAVX2(rows, nk, dp int, s, v, o *float32)

// attnSoftmaxAVX2 is the assembly form of attnSoftmax (n a multiple of 16, dp of 8, nq ≥ 1).
//
//go:noescape
func attnSoftmaxAVX2(s *float32, nq, n int, m, l, o *float32, dp int)

// attnPrefetch prefetches n bytes at p, p+stride, … (stride in bytes) for rows rows.
//
//go:noescape
func attnPrefetch(p *float32, rows, stride, n int)
