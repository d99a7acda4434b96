package kernels

// attnDot512 is the AVX-512 form of attnDot (one 16-key panel of scores into the
// score tile, row stride attnBK; rows a multiple of 12).
//
//go:noescape
func attnDot512(rows, d int, q, kp, s *float32)

// attnAccum512 is the AVX-512 form of attnAccum (rows a multiple of 12, dp a multiple of 8).
//
//go:noescape
func attnAccum512(rows, nk, dp int, s, v, o *float32)

// attnSoftmax512 is the AVX-512 form of attnSoftmaxAVX2 (n a multiple of 16, dp of 8, nq ≥ 1),
// with the same probabilities, maximum and rescaled accumulator bit for bit (the sum l is added in
// another order).
//
//go:noescape
func attnSoftmax512(s *float32, nq, n int, m, l, o *float32, dp int)
