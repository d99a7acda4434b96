package kernels

import (
	"fmt"
	"math"
	"sync"
	"unsafe"
)

// The direct AMX convolution: no im2col matrix. amxConv2D packs the implicit im2col matrix into
// pair panels for every B block, and that packing, not the tile products, bounded it (2×320×64×64
// 3×3: 1100 GFLOP per CPU-second with the products, 1300 with a kernel that does nothing). Here the
// input is paired once per call into a zero-padded image of bf16 pairs (bf16Pair2Rows): for each
// padded row, the row of channel pair c′ (channels 2c′ and 2c′+1) for every c′ in turn. The tile
// kernel (amxTiles) reads its B tiles from that image in place. The k order is tap-major, (kh, kw,
// c′): a k tile is 16 channel pairs at one tap, so its tile of 16 output pixels of one row is 16
// rows of 64 bytes, one padded row of pixels apart, starting at the tap's shifted pixel; each k
// tile's byte offset comes from a table (boff). (With planes of one channel pair each, a tile's
// rows lay a plane apart, 17 KiB at 64×64, and the convolutions ran 5–25% slower.) The weights
// are kept in that order (amxTapPairs: row k holds, for each tap, the pairs of its channels), so
// A is read in place too.
//
// It serves stride-1 3×3 convolutions with padding 1 (or 0 above and below: the bands of
// nn's banded convolution, halo rows included) and 1×1 ones without, of channel counts that
// are multiples of 32: every 3×3 and 1×1 convolution of the SD UNet and the VAE but their first
// and last.

// amxConvChunk is the 16-pixel tiles a work unit computes for its 32 output channels.
//
// Each kernel call runs the whole k range: splitting it into blocks that keep the call's A in L1
// (as amxGemm does) made every block load and store its accumulators and was slower (Xeon with
// AMX, 2 cores, 2×320×64×64 3×3, planes of one channel pair: 8 k tiles a call 1.30–1.36 TFLOP/s,
// 16 1.42–1.47, all 2.2–2.3; also with the accumulators in a scratch of cache-friendly rows).
// Chunks of 16 to 64 tiles are within 5% (with the rows paired row by row: 32 the best by 1–5%,
// 8 and 4 up to 15% slower).
const amxConvChunk = 32

// amxConvBandMax bounds the paired input of one band (bytes): an image larger than it is done in
// bands of output rows. Tests lower it.
var amxConvBandMax = 16 << 20

// amxKernelFunc runs tile-kernel calls (see amxTiles). amxKernelAsm is the assembly,
// the tests pass the simulator.
type amxKernelFunc func(calls []amxCall)

// amxCall is one call of the tile kernel: C = I + A·B for 32 rows of C by two 16-column blocks
// (see asmgen/amx.go, amxKernelProgram), the words the assembly reads in order.
type amxCall struct {
	a      unsafe.Pointer // A: 32 rows of kt·16 bf16 pairs, lda pairs apart
	lda    int
	b0, b1 unsafe.Pointer // B column blocks: k tile t's 16 rows at bj + boff[t] bytes, bs apart
	boff   unsafe.Pointer
	bs     int
	c0, c1 unsafe.Pointer // C column blocks: 32 rows of 16 floats, ldc floats apart
	ldc    int
	i0, i1 unsafe.Pointer // the accumulators' start, ldi floats apart (0: one row for all)
	ldi    int
	kt     int // k tiles, at least 1
	bmax   int // the largest of boff[:kt] (bounds; the assembly does not read it)
}

// amxBatch collects tile-kernel calls and runs them in one assembly call.
type amxBatch struct {
	kern  amxKernelFunc
	calls []amxCall
	cs    []float32 // the direct convolution's outputs of narrow rows (amxConvDirect)
}

// add appends a call (see amxCall) after checking that every access stays within the slices:
// bmax is the largest of boff[:kt].
func (b *amxBatch) add(a []uint32, lda int, b0, b1 []uint32, boff []int, bmax, bs int, c0, c1 []float32, ldc int, i0, i1 []float32, ldi, kt int) {
	if kt <= 0 || lda < amxKT*kt || ldc < sgemmNR || ldi != 0 && ldi < sgemmNR || bs < 64 || bmax < 0 || bmax%4 != 0 || bs%4 != 0 {
		panic(fmt.Sprintf("kernels: AMX tile call with kt %d, lda %d, ldc %d, ldi %d, bs %d, bmax %d", kt, lda, ldc, ldi, bs, bmax))
	}
	_ = a[(amxMR-1)*lda+amxKT*kt-1]
	_ = boff[kt-1]
	bl := bmax/4 + (amxKT-1)*bs/4 + sgemmNR
	_, _ = b0[bl-1], b1[bl-1]
	_, _ = c0[(amxMR-1)*ldc+sgemmNR-1], c1[(amxMR-1)*ldc+sgemmNR-1]
	_, _ = i0[(amxMR-1)*ldi+sgemmNR-1], i1[(amxMR-1)*ldi+sgemmNR-1]
	b.calls = append(b.calls, amxCall{
		a: unsafe.Pointer(&a[0]), lda: lda, b0: unsafe.Pointer(&b0[0]), b1: unsafe.Pointer(&b1[0]),
		boff: unsafe.Pointer(&boff[0]), bs: bs, c0: unsafe.Pointer(&c0[0]), c1: unsafe.Pointer(&c1[0]), ldc: ldc,
		i0: unsafe.Pointer(&i0[0]), i1: unsafe.Pointer(&i1[0]), ldi: ldi, kt: kt, bmax: bmax,
	})
}

// run runs the collected calls, in order, and forgets them.
func (b *amxBatch) run() {
	if len(b.calls) == 0 {
		return
	}
	b.kern(b.calls)
	clear(b.calls) // drop the pointers
	b.calls = b.calls[:0]
}

var amxBatches = sync.Pool{New: func() any { return new(amxBatch) }}

// amxConvApplies reports whether the direct AMX convolution runs p (see above).
func amxConvApplies(p ConvParams) bool {
	if p.StrideH != 1 || p.StrideW != 1 || !amxConvWeightFits(p.K, p.C, p.KH, p.KW) || p.PadH != 0 && p.PadH != p.KH/2 || p.PadW != p.KW/2 {
		return false
	}
	oh, ow := p.OutSize()
	return p.N > 0 && oh > 0 && ow > 0
}

// amxConvWeightFits reports whether a K×C×KH×KW weight may run as the direct AMX convolution.
func amxConvWeightFits(k, c, kh, kw int) bool {
	return k > 0 && k%amxMR == 0 && c > 0 && c%(2*amxKT) == 0 && kh == kw && (kh == 1 || kh == 3)
}

// amxTapPairs writes the weights w (k×c×taps bf16 bits, PyTorch's order) as the kernel's A:
// row r holds, for each tap t, the pairs (w[r][2c′][t], w[r][2c′+1][t]) for c′ < c/2.
func amxTapPairs(dst []uint32, w []uint16, k, c, taps int) {
	c2 := c / 2
	parallelFor(k, max(1, 1<<15/max(1, c*taps)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src, row := w[r*c*taps:(r+1)*c*taps], dst[r*c*taps/2:(r+1)*c*taps/2]
			for t := 0; t < taps; t++ {
				out := row[t*c2 : (t+1)*c2]
				for q := range out {
					out[q] = uint32(src[2*q*taps+t]) | uint32(src[(2*q+1)*taps+t])<<16
				}
			}
		}
	})
}

// amxTapBits is amxTapPairs' inverse: the bits in PyTorch's order.
func amxTapBits(dst []uint16, src []uint32, k, c, taps int) {
	c2 := c / 2
	parallelFor(k, max(1, 1<<15/max(1, c*taps)), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row, out := src[r*c*taps/2:(r+1)*c*taps/2], dst[r*c*taps:(r+1)*c*taps]
			for t := 0; t < taps; t++ {
				for q, v := range row[t*c2 : (t+1)*c2] {
					out[2*q*taps+t], out[(2*q+1)*taps+t] = uint16(v), uint16(v>>16)
				}
			}
		}
	})
}

// amxConvBuf is one call's paired input, bias tiles, offsets and band segments.
type amxConvBuf struct {
	x    []uint32
	bias []float32
	boff []int
	segs []amxConvSeg
}

// amxConvSeg is the output rows [r0, r1) of image n, one segment of a band.
type amxConvSeg struct{ n, r0, r1 int }

var amxConvBufs = sync.Pool{New: func() any { return new(amxConvBuf) }}

// amxConvDirect is Conv2DBF16 on the kernel kern for p where amxConvApplies, with the weights a
// as amxTapPairs writes them: y = conv(x rounded to bf16, a) + bias.
func amxConvDirect(kern amxKernelFunc, p ConvParams, x []float32, a []uint32, bias, y []float32) {
	oh, ow := p.OutSize()
	taps, c2, pad := p.KH*p.KW, p.C/2, p.PadW
	wp := p.W + 2*pad
	lda := taps * c2
	kt := lda / amxKT
	// Bands of output rows: an image's rows (several images to a band when they fit), or a part.
	rows := oh
	if per := c2 * (oh + p.KH - 1) * wp * 4; per > amxConvBandMax {
		rows = max(1, amxConvBandMax/(c2*wp*4)-(p.KH-1))
	}
	hp := rows + p.KH - 1 // padded rows of a band segment
	plane := hp * wp      // pairs of one channel pair in a segment (a segment holds c2 of them)
	// Rows of whole 16-pixel tiles take a tile from one output row. Narrower or odd rows (the
	// UNet's 8×8) take 16 consecutive "virtual" pixels v = y·wp + x of the padded width, those
	// with x ≥ ow being thrown away: that needs each channel pair's padded rows one after the
	// other (planar, with room for the last tile's overrun), and the outputs gathered from a
	// scratch.
	planar := ow%sgemmNR != 0
	// Pairs from channel pair c′ to c′+1 at the same place (a B tile's row stride), and from one
	// padded row to the next of the same channel pair.
	pairStep, rowStep := wp, c2*wp
	if planar {
		plane += 2 * amxKT
		pairStep, rowStep = plane, wp
	}
	segsPerImage := (oh + rows - 1) / rows
	segsPerBand := 1
	if segsPerImage == 1 {
		segsPerBand = max(1, min(p.N, amxConvBandMax/(c2*plane*4)))
	}
	buf := amxConvBufs.Get().(*amxConvBuf)
	defer amxConvBufs.Put(buf)
	if n := segsPerBand * c2 * plane; cap(buf.x) < n {
		buf.x = make([]uint32, n)
	}
	if cap(buf.bias) < p.K*sgemmNR {
		buf.bias = sgemmAligned(p.K * sgemmNR) // tile rows on cache lines
	}
	if cap(buf.boff) < kt {
		buf.boff = make([]int, kt)
	}
	xp, bt, boff := buf.x[:segsPerBand*c2*plane], buf.bias[:p.K*sgemmNR], buf.boff[:kt]
	// Bias tiles: row r of output channel block is bias[r] 16 times (the accumulators' start).
	for r := 0; r < p.K; r++ {
		v := float32(0)
		if bias != nil {
			v = bias[r]
		}
		for j := 0; j < sgemmNR; j++ {
			bt[r*sgemmNR+j] = v
		}
	}
	// k tile t: taps-major, 16 channel pairs at tap t/(c2/16).
	bmax := 0
	for t := range boff {
		tap, q := t/(c2/amxKT), t%(c2/amxKT)
		boff[t] = 4 * (q*amxKT*pairStep + tap/p.KW*rowStep + tap%p.KW)
		bmax = max(bmax, boff[t])
	}
	segs := buf.segs[:0]
	ldy := p.outPlane() // between output planes (p.OutPlane, or oh·ow)
	tilesPerRow := ow / sgemmNR
	run := func() {
		// Pair the band's input: segment s at xp[s·c2·plane:], its padded row r of channel pair c′
		// at c′·pairStep + r·rowStep, input row r0+r−PadH, zero outside the image.
		parallelFor(len(segs)*c2, max(1, 1<<14/max(1, plane)), func(lo, hi int) {
			for i := lo; i < hi; i++ {
				s := segs[i/c2]
				c := i % c2
				seg := xp[i/c2*c2*plane:]
				src := x[(s.n*p.C+2*c)*p.H*p.W:]
				if planar {
					clear(seg[c*plane+hp*wp : (c+1)*plane])
				}
				for r := 0; r < hp; r++ {
					row := seg[c*pairStep+r*rowStep:][:wp]
					y := s.r0 + r - p.PadH
					if y < 0 || y >= p.H || r >= s.r1-s.r0+p.KH-1 {
						clear(row)
						continue
					}
					clear(row[:pad])
					clear(row[pad+p.W:])
					bf16Pair2RowsAny(row[pad:pad+p.W], src[y*p.W:(y+1)*p.W], src[p.H*p.W+y*p.W:p.H*p.W+(y+1)*p.W])
				}
			}
		})
		// Units: (segment, chunk of 16-pixel tiles, 32-channel block), channel blocks fastest; a
		// short last segment leaves some units empty.
		kb := p.K / amxMR
		segTiles := func(s amxConvSeg) int { return (s.r1 - s.r0) * tilesPerRow }
		if planar {
			segTiles = func(s amxConvSeg) int { return ((s.r1-s.r0)*wp + sgemmNR - 1) / sgemmNR }
		}
		cps := (segTiles(amxConvSeg{r1: rows}) + amxConvChunk - 1) / amxConvChunk // chunks per segment
		parallelFor(len(segs)*cps*kb, 1, func(lo, hi int) {
			batch := amxBatches.Get().(*amxBatch)
			defer amxBatches.Put(batch)
			batch.kern = kern
			for u := lo; u < hi; u++ {
				si, t0, ob := u/(cps*kb), u/kb%cps*amxConvChunk, u%kb
				s := segs[si]
				t1 := min(segTiles(s), t0+amxConvChunk)
				if t0 >= t1 {
					continue
				}
				ablk := a[ob*amxMR*lda:]
				ldc, cs := ldy, []float32(nil)
				if planar { // the chunk's virtual pixels, gathered into y below
					ldc = (t1 - t0) * sgemmNR
					if cap(batch.cs) < amxMR*ldc {
						batch.cs = make([]float32, amxMR*ldc)
					}
					cs = batch.cs[:amxMR*ldc]
				}
				// tile i's B base (pairs, in the segment's paired rows) and C base.
				tile := func(i int) ([]uint32, []float32) {
					if planar { // virtual pixel 16i: padded row 16i/wp, column 16i%wp
						return xp[si*c2*plane+i*sgemmNR:], cs[(i-t0)*sgemmNR:]
					}
					oy, ox := i/tilesPerRow, i%tilesPerRow*sgemmNR
					b := xp[si*c2*plane+oy*rowStep+ox:]
					c := y[(s.n*p.K+ob*amxMR)*ldy+(s.r0+oy)*ow+ox:]
					return b, c
				}
				bs := 4 * pairStep
				i0 := bt[ob*amxMR*sgemmNR:] // the accumulators start as the bias
				for i := t0; i < t1; i += 2 {
					b0, c0 := tile(i)
					b1, c1 := b0, c0 // an odd last tile: computed twice, stored twice
					if i+1 < t1 {
						b1, c1 = tile(i + 1)
					}
					batch.add(ablk, lda, b0, b1, boff, bmax, bs, c0, c1, ldc, i0, i0, sgemmNR, kt)
				}
				batch.run()
				if planar {
					yb := y[(s.n*p.K+ob*amxMR)*ldy+s.r0*ow:]
					for v := t0 * sgemmNR; v < t1*sgemmNR; v++ {
						oy, ox := v/wp, v%wp
						if ox >= ow || oy >= s.r1-s.r0 {
							continue
						}
						for r := 0; r < amxMR; r++ {
							yb[r*ldy+oy*ow+ox] = cs[r*ldc+v-t0*sgemmNR]
						}
					}
				}
			}
		})
	}
	for n := 0; n < p.N; n++ {
		for r0 := 0; r0 < oh; r0 += rows {
			segs = append(segs, amxConvSeg{n, r0, min(oh, r0+rows)})
			if len(segs) == segsPerBand {
				run()
				segs = segs[:0]
			}
		}
	}
	if len(segs) > 0 {
		run()
	}
	buf.segs = segs[:0]
}

// amxConvGeneric is the plain-Go twin of amxConvDirect: each output the bias (or zero) plus, k
// tile by k tile in the kernel's order, amxDot of the weights' pairs (a, amxTapPairs' layout) and
// the input's (rounded to bf16, zero outside the image).
func amxConvGeneric(p ConvParams, x []float32, a []uint32, bias, y []float32) {
	oh, ow := p.OutSize()
	taps, c2 := p.KH*p.KW, p.C/2
	lda := taps * c2
	bcol := make([]uint32, amxKT)
	for n := 0; n < p.N; n++ {
		for k := 0; k < p.K; k++ {
			for oy := 0; oy < oh; oy++ {
				for ox := 0; ox < ow; ox++ {
					var c float32
					if bias != nil {
						c = bias[k]
					}
					for t := 0; t < lda/amxKT; t++ {
						tap, q := t/(c2/amxKT), t%(c2/amxKT)
						iy, ix := oy+tap/p.KW-p.PadH, ox+tap%p.KW-p.PadW
						for j := range bcol {
							bcol[j] = 0
							if iy >= 0 && iy < p.H && ix >= 0 && ix < p.W {
								ch := 2 * (q*amxKT + j)
								lo := x[((n*p.C+ch)*p.H+iy)*p.W+ix]
								hi := x[((n*p.C+ch+1)*p.H+iy)*p.W+ix]
								bcol[j] = uint32(bf16FromF32(lo)) | uint32(bf16FromF32(hi))<<16
							}
						}
						c = amxDot(c, a[k*lda+t*amxKT:k*lda+(t+1)*amxKT], bcol)
					}
					y[((n*p.K+k)*oh+oy)*ow+ox] = c
				}
			}
		}
	}
}

// u32sOf views bf16 bits as pairs (len(h) even, 4-byte aligned) or returns nil.
func u32sOf(h []uint16) []uint32 {
	if len(h) == 0 || len(h)%2 != 0 || uintptr(unsafe.Pointer(&h[0]))%4 != 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&h[0])), len(h)/2)
}

// amxConvSelfTest runs amxConvDirect on kern against its plain-Go twin, which it must equal bit
// for bit: a 3×3 convolution of two images, with two channel blocks, two k tiles a tap, an odd
// number of tiles and a bias, on pseudo-random bf16 values.
func amxConvSelfTest(kern amxKernelFunc) error {
	p := ConvParams{N: 2, C: 64, H: 3, W: 16, K: 64, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	seed := uint32(7)
	rnd := func() float32 {
		seed = seed*1664525 + 1013904223
		return bf16Float(uint32(bf16FromF32(float32(seed>>8)/(1<<24)*2 - 1)))
	}
	x, w, bias := make([]float32, p.N*p.C*p.H*p.W), make([]uint16, p.K*p.C*9), make([]float32, p.K)
	for i := range x {
		x[i] = rnd()
	}
	for i := range w {
		w[i] = bf16FromF32(rnd())
	}
	for i := range bias {
		bias[i] = rnd()
	}
	a := make([]uint32, len(w)/2)
	amxTapPairs(a, w, p.K, p.C, 9)
	got, want := make([]float32, p.N*p.K*p.H*p.W), make([]float32, p.N*p.K*p.H*p.W)
	amxConvDirect(kern, p, x, a, bias, got)
	amxConvGeneric(p, x, a, bias, want)
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return fmt.Errorf("direct convolution %+v: y[%d] = %g, plain Go %g", p, i, got[i], want[i])
		}
	}
	return nil
}
