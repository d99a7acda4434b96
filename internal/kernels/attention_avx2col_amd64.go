package kernels

//go:generate sh -c "cd asmgen && go run . attn2 > ../attention_avx2col_amd64.s"

// The AVX2+FMA kernels of the column layout (attention_col.go; asmgen/attention2.go emits them),
// for CPUs without AVX-512. Each takes the arguments of its AVX-512 counterpart and has the same
// plain-Go twin.

// attnQKTAVX2 is attnQKTGo: S^T of np panels of 8 keys against a 48-query tile Q̃^T of d steps.
//
//go:noescape
func attnQKTAVX2(np, d int, q, k, s *float32)

// attnPVTAVX2 is attnPVTGo: O^T (8·nc rows of 48) += V (nk rows, stride ldv) · P^T.
//
//go:noescape
func attnPVTAVX2(nk, nc, ldv int, p, v, o *float32)

// attnSoftmaxTAVX2 is attnSoftmaxTGo without pt, except that probabilities below 2^-126 become
// 0 (no subnormals).
//
//go:noescape
func attnSoftmaxTAVX2(s *float32, n int, m, l, o *float32, nc int)

// attnLoadQTAVX2 is attnLoadQTGo (gathers down the query rows).
//
//go:noescape
func attnLoadQTAVX2(q *float32, ldq, nq, d int, scale float32, qt *float32)

// attnStoreOTAVX2 is attnStoreOTGo (8×8 transposes); o must hold d rows rounded up to 8.
//
//go:noescape
func attnStoreOTAVX2(o, l *float32, nq, d int, out *float32, ldo int)

// The forms for the first 8·nv lanes of a tile only (nv = 1…5; the kernels above are nv = 6),
// for tiles of few queries: lanes from 8·nv on are neither read nor written.

//go:noescape
func attnQKTAVX2N1(np, d int, q, k, s *float32)

//go:noescape
func attnPVTAVX2N1(nk, nc, ldv int, p, v, o *float32)

//go:noescape
func attnSoftmaxTAVX2N1(s *float32, n int, m, l, o *float32, nc int)

//go:noescape
func attnQKTAVX2N2(np, d int, q, k, s *float32)

//go:noescape
func attnPVTAVX2N2(nk, nc, ldv int, p, v, o *float32)

//go:noescape
func attnSoftmaxTAVX2N2(s *float32, n int, m, l, o *float32, nc int)

//go:noescape
func attnQKTAVX2N3(np, d int, q, k, s *float32)

//go:noescape
func attnPVTAVX2N3(nk, nc, ldv int, p, v, o *float32)

//go:noescape
func attnSoftmaxTAVX2N3(s *float32, n int, m, l, o *float32, nc int)

//go:noescape
func attnQKTAVX2N4(np, d int, q, k, s *float32)

//go:noescape
func attnPVTAVX2N4(nk, nc, ldv int, p, v, o *float32)

//go:noescape
func attnSoftmaxTAVX2N4(s *float32, n int, m, l, o *float32, nc int)

//go:noescape
func attnQKTAVX2N5(np, d int, q, k, s *float32)

//go:noescape
func attnPVTAVX2N5(nk, nc, ldv int, p, v, o *float32)

//go:noescape
func attnSoftmaxTAVX2N5(s *float32, n int, m, l, o *float32, nc int)

// attnAVX2Col holds the product and softmax kernels by the number of 8-lane vectors of the tile
// they cover (index 1…6).
var attnAVX2Col = [7]attnColKernels{
	{},
	{attnQKTAVX2N1, attnPVTAVX2N1, attnSoftmaxTAVX2N1},
	{attnQKTAVX2N2, attnPVTAVX2N2, attnSoftmaxTAVX2N2},
	{attnQKTAVX2N3, attnPVTAVX2N3, attnSoftmaxTAVX2N3},
	{attnQKTAVX2N4, attnPVTAVX2N4, attnSoftmaxTAVX2N4},
	{attnQKTAVX2N5, attnPVTAVX2N5, attnSoftmaxTAVX2N5},
	{attnQKTAVX2, attnPVTAVX2, attnSoftmaxTAVX2},
}
