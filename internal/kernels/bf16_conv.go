package kernels

import (
	"sync"
	"unsafe"
)

// The bf16 convolution with channel pairs. The GEMM's k order of a convolution is (c, kh, kw);
// with the pairs of k steps taken as (c, c+1) at one tap instead, a B slot of the implicit
// im2col matrix is one 32-bit value of a "paired" input image whose plane c' holds channels 2c'
// and 2c'+1 rounded to bf16. The input is paired once per call (one vectorised pass), then the
// float32 im2col packer moves those 32-bit values for half as many k steps, with no rounding
// pass per packed panel; the weights are packed in the same order, (c', kh, kw, c%2)
// (packAPairsTaps).

// bf16PairedMaxBytes bounds the paired input (half the input's size) kept for one call; larger
// inputs (the VAE's full-resolution layers) take the per-panel rounding path. Tests lower it to
// check that path.
var bf16PairedMaxBytes = 16 << 20

// bf16PairedMinPixels is the smallest output image that takes the paired path: below it the
// weights are the larger operand and their packing (slower in the paired order) dominates;
// measured on the Zen 5 (GFLOP per CPU-second, BenchmarkConv2DBF16): 2×320×64×64 3×3 went from
// 271–281 to 313–317 paired, while 2×640×32×32 and 2×1280×16×16 were no faster. Tests lower it.
var bf16PairedMinPixels = 2048

// bf16ConvBuf is one call's paired input.
type bf16ConvBuf struct{ x []uint32 }

var bf16ConvBufs = sync.Pool{New: func() any { return new(bf16ConvBuf) }}

// conv2DPaired runs a bf16 convolution on the pair path with paired channels, the weights being
// a (pairs with pairTaps: bits, or panels packed at load), reporting false (having done
// nothing) when it does not apply: an odd channel count, a large input, or fewer than minPixels
// output pixels.
func conv2DPaired(p ConvParams, x []float32, a *sgemmSrc, bias, y []float32, minPixels int) bool {
	oh, ow := p.OutSize()
	if p.C%2 != 0 || 2*p.N*p.C*p.H*p.W > bf16PairedMaxBytes || oh*ow < minPixels {
		return false
	}
	if p.N <= 0 || p.K <= 0 || oh <= 0 || ow <= 0 {
		return true
	}
	c2, hw := p.C/2, p.H*p.W
	ohw, ckk := oh*ow, p.C*p.KH*p.KW
	buf := bf16ConvBufs.Get().(*bf16ConvBuf)
	defer bf16ConvBufs.Put(buf)
	if cap(buf.x) < p.N*c2*hw {
		buf.x = make([]uint32, p.N*c2*hw)
	}
	xp := buf.x[:p.N*c2*hw]
	parallelFor(p.N*c2, max(1, 1<<14/max(1, hw)), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			n, c := i/c2, i%c2
			src := x[(n*p.C+2*c)*hw:]
			bf16Pair2RowsAny(xp[i*hw:(i+1)*hw], src[:hw], src[hw:2*hw])
		}
	})
	pp := p
	pp.C = c2
	xd := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(xp))), len(xp))
	dense := p.KH == 1 && p.KW == 1 && p.StrideH == 1 && p.StrideW == 1 && p.PadH == 0 && p.PadW == 0
	src := func(data []float32) sgemmSrc {
		b := sgemmSrc{data: data, ld: hw, pairs: true, pairK: ckk, paired: true}
		if !dense {
			b.conv, b.cp, b.ow = true, pp, ow
		}
		return b
	}
	if p.N > 1 && ohw%sgemmNR == 0 {
		b := src(xd)
		b.batchCols, b.batchStride = ohw, c2*hw
		sgemmRun(p.K, p.N*ohw, ckk, 1, a, &b, 0, y, ohw, ohw, p.K*ohw, bias, true)
		return true
	}
	for n := 0; n < p.N; n++ {
		b := src(xd[n*c2*hw : (n+1)*c2*hw])
		sgemmRun(p.K, ohw, ckk, 1, a, &b, 0, y[n*p.K*ohw:(n+1)*p.K*ohw], ohw, 0, 0, bias, true)
	}
	return true
}

// bf16Pair2RowsAny rounds even and odd (of equal length) to bf16 and joins them into pairs at dst,
// in assembly when it may run.
func bf16Pair2RowsAny(dst []uint32, even, odd []float32) {
	n := len(dst)
	even, odd = even[:n], odd[:n]
	if useBF16 && !bf16Twin && n >= 16 {
		m := n &^ 15
		bf16Pair2Rows(&dst[0], &even[0], &odd[0], m/16)
		dst, even, odd = dst[m:], even[m:], odd[m:]
	}
	for i := range dst {
		dst[i] = uint32(bf16FromF32(even[i])) | uint32(bf16FromF32(odd[i]))<<16
	}
}
