//go:build amd64

package kernels

import (
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate sh -c "cd asmgen && go run . bf16 > ../bf16_amd64.s"

// cpuHasBF16 reports AVX512-BF16 with the AVX-512 subsets the bf16 kernels also use (VL for
// the ymm VDPBF16PS, BW for VPERMW).
var cpuHasBF16 = cpu.X86.HasAVX512BF16 && cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BW

// bf16Kernel12x32, bf16Kernel6x32 and bf16Kernel6x16 are sgemmKernel12x32, sgemmKernel6x32 and
// sgemmKernel6x16 on bf16 pair panels (kc pair steps), with VDPBF16PS for VFMADD231PS.
//
//go:noescape
func bf16Kernel12x32(kc int, a, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func bf16Kernel6x32(kc int, a, b, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func bf16Kernel6x16(kc int, a, b, c *float32, ldc int, alpha, beta float32)

// bf16PairRows rounds n steps of two 16-float rows (src[32i:], even k, and src[32i+16:], odd k)
// to bf16 with VCVTNE2PS2BF16 and stores them as 16 pairs at dst[16i:].
//
//go:noescape
func bf16PairRows(dst *uint32, src *float32, n int)

// bf16Round rounds n·16 floats to bf16 with VCVTNEPS2BF16.
//
//go:noescape
func bf16Round(dst *uint16, src *float32, n int)

// bf16Kernel512 is sgemmKernel512 for bf16 pair panels.
func bf16Kernel512(rows, kc int, a, b, c []float32, off0, off1, ldc int, alpha, beta float32, bias []float32, mode int) {
	bp := sgemm512Bias(rows, bias, mode)
	_ = a[sgemmMR*kc-1]
	_ = b[2*sgemmNR*kc-1]
	_ = c[off0+(rows-1)*ldc+sgemmNR-1]
	_ = c[off1+(rows-1)*ldc+sgemmNR-1]
	if rows == 2*sgemmMR {
		_ = a[rows*kc-1]
		bf16Kernel12x32(kc, unsafe.SliceData(a), unsafe.SliceData(b), &c[off0], &c[off1], ldc, alpha, beta, bp, mode)
		return
	}
	bf16Kernel6x32(kc, unsafe.SliceData(a), unsafe.SliceData(b), &c[off0], &c[off1], ldc, alpha, beta, bp, mode)
}

// bf16Kernel runs the 6×16 bf16 kernel: assembly when avx is set, else the plain-Go twin.
func bf16Kernel(avx bool, kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	if avx {
		_ = a[sgemmMR*kc-1]
		_ = b[sgemmNR*kc-1]
		_ = c[(sgemmMR-1)*ldc+sgemmNR-1]
		bf16Kernel6x16(kc, unsafe.SliceData(a), unsafe.SliceData(b), unsafe.SliceData(c), ldc, alpha, beta)
		return
	}
	bf16KernelGeneric(kc, a, b, c, ldc, alpha, beta)
}

// bf16Pair2Rows is bf16PairRows with the even and odd rows in two arrays: for each of n steps
// it rounds even[16i:16i+16] and odd[16i:16i+16] and stores them as 16 pairs at dst[16i:].
//
//go:noescape
func bf16Pair2Rows(dst *uint32, even, odd *float32, n int)

// bf16Kernel12x32Direct, bf16Kernel6x32Direct and bf16Kernel6x16Direct are the bf16 kernels with
// A read in place: bf16 pair rows at a, a+lda, … (lda in 32-bit slots), kc pairs each.
//
//go:noescape
func bf16Kernel12x32Direct(kc int, a *uint32, lda int, b *uint32, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

//go:noescape
func bf16Kernel6x16Direct(kc int, a *uint32, lda int, b *uint32, c *float32, ldc int, alpha, beta float32)

//go:noescape
func bf16Kernel6x32Direct(kc int, a *uint32, lda int, b *uint32, c0, c1 *float32, ldc int, alpha, beta float32, bias *float32, mode int)

// bf16Kernel512Direct runs the rows×32 in-place-A bf16 kernel (rows 12 or 6): A's rows of pairs
// at a[r·lda:], the B pair panels b (32 columns, kc steps), C's column halves at c[off0:] and
// c[off1:], the bias as sgemmKernel512Direct adds it.
func bf16Kernel512Direct(rows, kc int, a []uint32, lda int, b []uint32, c []float32, off0, off1, ldc int, alpha, beta float32, bias []float32, mode int) {
	bp := sgemm512Bias(rows, bias, mode)
	_ = a[(rows-1)*lda+kc-1]
	_ = b[2*sgemmNR*kc-1]
	_ = c[off0+(rows-1)*ldc+sgemmNR-1]
	_ = c[off1+(rows-1)*ldc+sgemmNR-1]
	if rows == 2*sgemmMR {
		bf16Kernel12x32Direct(kc, &a[0], lda, &b[0], &c[off0], &c[off1], ldc, alpha, beta, bp, mode)
		return
	}
	bf16Kernel6x32Direct(kc, &a[0], lda, &b[0], &c[off0], &c[off1], ldc, alpha, beta, bp, mode)
}

// bf16Kernel6x16DirectAny runs the 6×16 in-place-A bf16 kernel (bounds checked).
func bf16Kernel6x16DirectAny(kc int, a []uint32, lda int, b []uint32, c []float32, ldc int, beta float32) {
	_ = a[(sgemmMR-1)*lda+kc-1]
	_ = b[sgemmNR*kc-1]
	_ = c[(sgemmMR-1)*ldc+sgemmNR-1]
	bf16Kernel6x16Direct(kc, &a[0], lda, &b[0], &c[0], ldc, 1, beta)
}

// bf16ProbeDot and bf16ProbeFMA run n iterations of 16 independent zmm VDPBF16PS (64 FLOP each)
// or VFMADD231PS (32 FLOP each) on zeroed registers: bf16_select.go times them.
//
//go:noescape
func bf16ProbeDot(n int)

//go:noescape
func bf16ProbeFMA(n int)

// bf16ProbeRun runs the probe loop: the bf16 dot products when dot is set, else the FMAs.
func bf16ProbeRun(dot bool, n int) {
	if dot {
		bf16ProbeDot(n)
		return
	}
	bf16ProbeFMA(n)
}
