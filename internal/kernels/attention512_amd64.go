package kernels

//go:generate sh -c "cd asmgen && go run . attn512 > ../attention512_amd64.s"

// The AVX-512 kernels of the column layout (attention_col.go; asmgen/attention.go emits them).
// Each has a plain-Go twin with the same arguments (slices for pointers): attnQKTGo, attnPVTGo,
// attnSoftmaxTGo, and their bf16 forms.

// attnQKT512 is attnQKTGo: S^T of np panels of 8 keys against a 48-query tile Q̃^T of d steps.
//
//go:noescape
func attnQKT512(np, d int, q, k, s *float32)

// attnPVT512 is attnPVTGo: O^T (8·nc rows of 48) += V (nk rows, stride ldv) · P^T.
//
//go:noescape
func attnPVT512(nk, nc, ldv int, p, v, o *float32)

// attnSoftmaxT512 is attnSoftmaxTGo without pt: the online-softmax step on n score rows.
//
//go:noescape
func attnSoftmaxT512(s *float32, n int, m, l, o *float32, nc int)

// attnQKT512BF16 is attnQKTBF16Go (VDPBF16PS on pairs of head-dim values).
//
//go:noescape
func attnQKT512BF16(np, d int, q, k *uint32, s *float32)

// attnPVT512BF16 is attnPVTBF16Go (VDPBF16PS on pairs of keys; nk pair steps).
//
//go:noescape
func attnPVT512BF16(nk, nc, ldv int, p, v *uint32, o *float32)

// attnSoftmaxT512BF16 is attnSoftmaxTGo with pt (n even): the probabilities go to p as bf16 key
// pairs; s is left as it was.
//
//go:noescape
func attnSoftmaxT512BF16(s *float32, n int, m, l, o *float32, nc int, p *uint32)

// attnLoadQT512 is attnLoadQTGo (gathers down the query rows).
//
//go:noescape
func attnLoadQT512(q *float32, ldq, nq, d int, scale float32, qt *float32)

// attnLoadQT512BF16 is attnLoadQTBF16Go.
//
//go:noescape
func attnLoadQT512BF16(q *float32, ldq, nq, d int, scale float32, qt *uint32)

// attnStoreOT512 is attnStoreOTGo (scatters down the output rows).
//
//go:noescape
func attnStoreOT512(o, l *float32, nq, d int, out *float32, ldo int)
