package kernels

import (
	"fmt"
	"math/rand"
	"testing"
	"unsafe"

	"github.com/smallsd/smallsd/internal/benchutil"
)

// TestKernel12x32DirectPF checks that the prefetching kernel writes exactly what
// sgemmKernel12x32Direct writes, for k counts with and without a tail, every bias mode and beta,
// with pf pointing at a buffer or at an unmapped address (a prefetch never faults).
func TestKernel12x32DirectPF(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512")
	}
	r := rand.New(rand.NewSource(5))
	buf := sgemmAligned(1 << 14)
	for _, kc := range []int{1, 3, 4, 7, 64, 255} {
		lda, ldc := kc+5, 40
		a, b, bias := sgemmRandSlice(r, 12*lda), sgemmRandSlice(r, 32*kc), sgemmRandSlice(r, 32)
		c0 := sgemmRandSlice(r, 12*ldc)
		for mode := 0; mode < 3; mode++ {
			for _, beta := range []float32{0, 0.5} {
				for _, pf := range []uintptr{uintptr(unsafe.Pointer(&buf[0])), 1 << 12} {
					want, got := append([]float32(nil), c0...), append([]float32(nil), c0...)
					bp := sgemm512Bias(12, bias, mode)
					sgemmKernel12x32Direct(kc, &a[0], lda, &b[0], &want[0], &want[16], ldc, 1.5, beta, bp, mode)
					sgemmKernel12x32DirectPF(kc, &a[0], lda, &b[0], &got[0], &got[16], ldc, 1.5, beta, bp, mode, pf)
					if d := sgemmMaxDiff(got, want); !(d == 0) {
						t.Errorf("kc=%d mode=%d beta=%g pf=%#x: differs by %g", kc, mode, beta, pf, d)
					}
				}
			}
		}
	}
}

// BenchmarkKernel12x32Direct runs the bare in-place-A 12×32 kernel on one core: A (12 rows of
// lda floats) and B (kc·32 floats) small enough for L1 ("l1"), or B walking through a block of
// blockKB KiB so that it streams from L2 as in the text encoder's GEMMs.
func BenchmarkKernel12x32Direct(b *testing.B) {
	if !useAVX512 {
		b.Skip("no AVX-512")
	}
	for _, s := range []struct{ kc, lda, blockKB int }{{128, 128, 16}, {256, 768, 32}, {256, 768, 256}, {256, 768, 1024}, {256, 784, 256}, {308, 3072, 308}, {308, 3088, 308}} {
		b.Run(fmt.Sprintf("kc%d_lda%d_B%dKiB", s.kc, s.lda, s.blockKB), func(b *testing.B) {
			a := sgemmAligned(12 * s.lda)
			tiles := max(1, s.blockKB*256/(32*s.kc))
			bb := sgemmAligned(tiles * 32 * s.kc)
			c := sgemmAligned(12 * 32 * tiles)
			for i := range a {
				a[i] = 1e-3
			}
			for i := range bb {
				bb[i] = 1e-3
			}
			b.ResetTimer()
			cpu0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				for t := 0; t < tiles; t++ {
					bp := bb[t*32*s.kc:]
					ct := c[t*12*32:]
					sgemmKernel12x32Direct(s.kc, unsafe.SliceData(a), s.lda, unsafe.SliceData(bp), &ct[0], &ct[16], 32, 1, 1, nil, 0)
				}
			}
			sgemmReport(b, 2*12*32*float64(s.kc)*float64(tiles), cpu0)
		})
	}
}

// BenchmarkKernel12x32DirectParallel is the L1-resident case of BenchmarkKernel12x32Direct on
// every core at once (each its own data), to see the clock with all cores running AVX-512.
func BenchmarkKernel12x32DirectParallel(b *testing.B) {
	if !useAVX512 {
		b.Skip("no AVX-512")
	}
	const kc = 256
	cpu0 := benchutil.CPUSeconds()
	b.RunParallel(func(pb *testing.PB) {
		a, bb, c := sgemmAligned(12*kc), sgemmAligned(32*kc), sgemmAligned(12*32)
		for pb.Next() {
			for t := 0; t < 8; t++ {
				sgemmKernel12x32Direct(kc, unsafe.SliceData(a), kc, unsafe.SliceData(bb), &c[0], &c[16], 32, 1, 1, nil, 0)
			}
		}
	})
	sgemmReport(b, 8*2*12*32*kc, cpu0)
}
