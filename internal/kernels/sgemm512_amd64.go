//go:build amd64

package kernels

import "unsafe"

//go:generate sh -c "cd asmgen && go run . avx512 > ../sgemm512_amd64.s"

// sgemmKernel12x32 is the AVX-512 micro-kernel: from two consecutive packed A panels (12 rows) and
// two consecutive packed B panels (32 columns), both of kc steps, the 12×32 tile of C becomes
// alpha·Ap·Bp + beta·C; columns 0–15 of row r are at c0 + r·ldc, columns 16–31 at c1 + r·ldc.
// beta == 0 does not read C.
//
//go:noescape
func sgemmKernel12x32(kc int, a, b, c0, c1 *float32, ldc int, alpha, beta float32)

// sgemmKernel12x32Direct is sgemmKernel12x32 with A read in place: row r of the 12×kc A panel
// starts at a + r·lda floats.
//
//go:noescape
func sgemmKernel12x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32)

// sgemmKernel512 runs sgemmKernel12x32 on the packed panels a (12·kc) and b (32·kc) with the two
// column halves of the C tile at c[off0:] and c[off1:].
func sgemmKernel512(kc int, a, b, c []float32, off0, off1, ldc int, alpha, beta float32) {
	_ = a[2*sgemmMR*kc-1]
	_ = b[2*sgemmNR*kc-1]
	_ = c[off0+(2*sgemmMR-1)*ldc+sgemmNR-1]
	_ = c[off1+(2*sgemmMR-1)*ldc+sgemmNR-1]
	sgemmKernel12x32(kc, unsafe.SliceData(a), unsafe.SliceData(b), &c[off0], &c[off1], ldc, alpha, beta)
}

// sgemmKernel512Direct runs sgemmKernel12x32Direct with A's 12 rows at a[r·lda:].
func sgemmKernel512Direct(kc int, a []float32, lda int, b, c []float32, off0, off1, ldc int, alpha, beta float32) {
	_ = a[(2*sgemmMR-1)*lda+kc-1]
	_ = b[2*sgemmNR*kc-1]
	_ = c[off0+(2*sgemmMR-1)*ldc+sgemmNR-1]
	_ = c[off1+(2*sgemmMR-1)*ldc+sgemmNR-1]
	sgemmKernel12x32Direct(kc, unsafe.SliceData(a), lda, unsafe.SliceData(b), &c[off0], &c[off1], ldc, alpha, beta)
}
