//go:build amd64

package kernels

import "unsafe"

//go:generate sh -c "cd asmgen && go run . avx512 > ../sgemm512_amd64.s"

// sgemmKernel12x32 is the AVX-512 micro-kernel: from two consecutive packed A panels (12 rows) and
// two consecutive packed B panels (32 columns), both of kc steps, the 12×32 tile of C becomes
// alpha·Ap·Bp + bias + beta·C; columns 0–15 of row r are at c0 + r·ldc, columns 16–31 at
// c1 + r·ldc. mode 0 adds no bias, 1 adds bias[r] to row r, 2 adds bias[x] to column x. beta == 0
// does not read C.
//
//go:noescape
func sgemmKernel12x32(kc int, a, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

// sgemmKernel12x32Direct is sgemmKernel12x32 with A read in place: row r of the 12×kc A panel
// starts at a + r·lda floats.
//
//go:noescape
func sgemmKernel12x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

// sgemmKernel12x32DirectPF is sgemmKernel12x32Direct that also prefetches into L2 one cache line
// per four k steps from pf on (16·kc bytes in all; prefetches never fault).
//
//go:noescape
func sgemmKernel12x32DirectPF(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int, pf uintptr)

// sgemmKernel6x32 and sgemmKernel6x32Direct are the 6-row variants (one A panel), for the last
// rows of a block.
//
//go:noescape
func sgemmKernel6x32(kc int, a, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel6x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

// sgemmKernelRx32Direct for R = 1…11 (R ≠ 6) are the in-place-A kernels of R rows, for the last
// rows of a GEMM.
//
//go:noescape
func sgemmKernel1x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel2x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel3x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel4x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel5x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel7x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel8x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel9x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel10x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func sgemmKernel11x32Direct(kc int, a *float32, lda int, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

// sgemmKernel512 runs the rows×32 kernel (rows 12 or 6) on the packed panels a (rows·kc) and b
// (32·kc) with the two column halves of the C tile at c[off0:] and c[off1:], adding bias (the
// tile's own values: rows of them in mode 1, 32 in mode 2) as the kernel does.
func sgemmKernel512(rows, kc int, a, b, c []float32, off0, off1, ldc int, alpha, beta float32, bias []float32, mode int) {
	bp := sgemm512Bias(rows, bias, mode)
	_ = a[rows*kc-1]
	_ = b[2*sgemmNR*kc-1]
	_ = c[off0+(rows-1)*ldc+sgemmNR-1]
	_ = c[off1+(rows-1)*ldc+sgemmNR-1]
	if rows == 2*sgemmMR {
		sgemmKernel12x32(kc, unsafe.SliceData(a), unsafe.SliceData(b), &c[off0], &c[off1], ldc, alpha, beta, bp, mode)
		return
	}
	_ = a[sgemmMR*kc-1]
	sgemmKernel6x32(kc, unsafe.SliceData(a), unsafe.SliceData(b), &c[off0], &c[off1], ldc, alpha, beta, bp, mode)
}

// sgemmKernel512Direct runs the rows×32 in-place-A kernel (1 ≤ rows ≤ 12) with A's rows at
// a[r·lda:]. A 12-row call with pf not empty also prefetches 16·kc bytes from pf[0] on into L2.
func sgemmKernel512Direct(rows, kc int, a []float32, lda int, b, c []float32, off0, off1, ldc int, alpha, beta float32, bias []float32, mode int, pf []float32) {
	bp := sgemm512Bias(rows, bias, mode)
	_ = a[(rows-1)*lda+kc-1]
	_ = b[2*sgemmNR*kc-1]
	_ = c[off0+(rows-1)*ldc+sgemmNR-1]
	_ = c[off1+(rows-1)*ldc+sgemmNR-1]
	ap, bb, c0, c1 := unsafe.SliceData(a), unsafe.SliceData(b), &c[off0], &c[off1]
	switch rows {
	case 12:
		if len(pf) > 0 {
			sgemmKernel12x32DirectPF(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode, uintptr(unsafe.Pointer(&pf[0])))
			return
		}
		sgemmKernel12x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 11:
		sgemmKernel11x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 10:
		sgemmKernel10x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 9:
		sgemmKernel9x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 8:
		sgemmKernel8x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 7:
		sgemmKernel7x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 6:
		sgemmKernel6x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 5:
		sgemmKernel5x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 4:
		sgemmKernel4x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 3:
		sgemmKernel3x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 2:
		sgemmKernel2x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	case 1:
		sgemmKernel1x32Direct(kc, ap, lda, bb, c0, c1, ldc, alpha, beta, bp, mode)
	default:
		panic("kernels: sgemmKernel512Direct of more than 12 rows")
	}
}

// sgemm512Bias checks the bias a kernel call will read (rows values in mode 1, 32 in mode 2) and
// returns a pointer to it (nil in mode 0).
func sgemm512Bias(rows int, bias []float32, mode int) *float32 {
	switch mode {
	case 0:
		return nil
	case 1:
		_ = bias[rows-1]
	default:
		_ = bias[2*sgemmNR-1]
	}
	return &bias[0]
}
