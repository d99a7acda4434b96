//go:build amd64

package kernels

import "unsafe"

//go:generate sh -c "cd asmgen && go run . > ../sgemm_amd64.s"

// sgemmKernel6x16 is the AVX2/FMA micro-kernel: the 6×16 tile at c (row stride ldc floats) becomes
// alpha·Ap·Bp + beta·C, with Ap and Bp packed micro-panels of kc steps. beta == 0 does not read C.
//
//go:noescape
func sgemmKernel6x16(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// sgemmKernel6x16Direct is sgemmKernel6x16 with A read in place: row r of the 6×kc A panel starts
// at a + r·lda floats (row-major, unpacked).
//
//go:noescape
func sgemmKernel6x16Direct(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)

// sgemmKernelDirect runs the in-place-A micro-kernel (assembly when avx is set).
func sgemmKernelDirect(avx bool, kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32) {
	if avx {
		_ = a[(sgemmMR-1)*lda+kc-1]
		_ = b[sgemmNR*kc-1]
		_ = c[(sgemmMR-1)*ldc+sgemmNR-1]
		sgemmKernel6x16Direct(kc, unsafe.SliceData(a), lda, unsafe.SliceData(b), unsafe.SliceData(c), ldc, alpha, beta)
		return
	}
	sgemmKernelDirectGeneric(kc, a, lda, b, c, ldc, alpha, beta)
}

// sgemmKernel runs the assembly micro-kernel when avx is set, else the plain-Go one.
func sgemmKernel(avx bool, kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	if avx {
		_ = a[sgemmMR*kc-1]
		_ = b[sgemmNR*kc-1]
		_ = c[(sgemmMR-1)*ldc+sgemmNR-1]
		sgemmKernel6x16(kc, unsafe.SliceData(a), unsafe.SliceData(b), unsafe.SliceData(c), ldc, alpha, beta)
		return
	}
	sgemmKernelGeneric(kc, a, b, c, ldc, alpha, beta)
}

// sgemmKernel6x8 and sgemmKernel6x8Direct are the 6×8 variants: they use the first eight columns of
// the packed B micro-panel and update a 6×8 tile of C.
//
//go:noescape
func sgemmKernel6x8(kc int, a, b, c *float32, ldc int, alpha, beta float32)

//go:noescape
func sgemmKernel6x8Direct(kc int, a *float32, lda int, b, c *float32, ldc int, alpha, beta float32)

// sgemmKernelNarrow runs the 6×8 assembly kernel (only called when avx is set).
func sgemmKernelNarrow(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[sgemmMR*kc-1]
	_ = b[sgemmNR*kc-1]
	_ = c[(sgemmMR-1)*ldc+sgemmNR/2-1]
	sgemmKernel6x8(kc, unsafe.SliceData(a), unsafe.SliceData(b), unsafe.SliceData(c), ldc, alpha, beta)
}

// sgemmKernelDirectNarrow runs the 6×8 in-place-A assembly kernel (only called when avx is set).
func sgemmKernelDirectNarrow(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32) {
	_ = a[(sgemmMR-1)*lda+kc-1]
	_ = b[sgemmNR*kc-1]
	_ = c[(sgemmMR-1)*ldc+sgemmNR/2-1]
	sgemmKernel6x8Direct(kc, unsafe.SliceData(a), lda, unsafe.SliceData(b), unsafe.SliceData(c), ldc, alpha, beta)
}

// sgemmPackBT16 packs n8·8 k steps of a 16-column B micro-panel from 16 rows at src with row
// stride ld floats (B stored transposed), transposing 8×8 blocks in registers.
//
//go:noescape
func sgemmPackBT16(dst, src *float32, ld, n8 int)

// sgemmPackBN16 copies kc rows of 16 floats from src (row stride ld floats) to dst, contiguous.
//
//go:noescape
func sgemmPackBN16(dst, src *float32, ld, kc int)

// packBN16 packs the 16-column micro-panel d (kc steps) from src[p·ld : p·ld+16], p < kc, with
// the assembly copier; it reports false (doing nothing) without AVX2.
func packBN16(d, src []float32, ld, kc int) bool {
	if !useAVX2 || kc < 1 {
		return false
	}
	_ = src[(kc-1)*ld+sgemmNR-1]
	_ = d[sgemmNR*kc-1]
	sgemmPackBN16(unsafe.SliceData(d), unsafe.SliceData(src), ld, kc)
	return true
}

// packBT16 packs the 16-column micro-panel d (kc steps) from the 16 rows src[x·ld + p], p < kc,
// with the assembly transposer; it reports false (doing nothing) without AVX2.
func packBT16(d, src []float32, ld, kc int) bool {
	if !useAVX2 || kc < 8 {
		return false
	}
	_ = src[(sgemmNR-1)*ld+kc-1]
	_ = d[sgemmNR*kc-1]
	n8 := kc / 8
	sgemmPackBT16(unsafe.SliceData(d), unsafe.SliceData(src), ld, n8)
	for p := n8 * 8; p < kc; p++ {
		for x := 0; x < sgemmNR; x++ {
			d[p*sgemmNR+x] = src[x*ld+p]
		}
	}
	return true
}
