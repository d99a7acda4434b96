package kernels

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// bf16 weights packed at load. On the bf16 pair path (BF16Native) every call of LinearBF16 and
// Conv2DBF16 packs its bf16 weight matrix into pair panels again: a strided transpose for a
// Linear's B, a scalar interleave (in the channel-pair order) for a convolution's A. A BF16Weight
// holds those panels instead of the row-major bits, made once at load with the same packers:
//
//   - Linear (PackLinearBF16): B panels of 16 output columns by k blocks (PackedWeight's layout in
//     32-bit pair slots). The call rounds its input once to bf16 pairs (row-major, in place of a
//     packed A) and the in-place-A kernels (bf16Kernel12x32Direct, …) read those rows directly.
//   - Convolution (PackConvBF16): A panels of 6 output channels by k blocks, in the channel-pair
//     order of conv2DPaired when C is even (plain k order otherwise); the GEMM driver's packA then
//     copies a block instead of packing it.
//
// The panels take the memory of the bits they replace (rounded up to whole panels). Without the
// pair path (no AVX512-BF16, or it does not pay: BF16Status) a Linear's bits are packed into the
// float32 kernels' B panels instead, kept as bf16 bits (PackedWeight's layout, as fp16 weights
// are: widened one contiguous block at a time per call, far cheaper than LinearBF16's strided
// widen-and-transpose of row-major bits), and a convolution keeps its bits, which
// Conv2DBF16 widens while packing as Conv2DF16 does.

// BF16Weight is a bf16 weight matrix of Rows×Cols (a Linear's out×in, a convolution's
// K×C·KH·KW) prepared for the CPU's bf16 path: pair panels, or row-major bits. A convolution
// whose kernel is wider than 1×1 keeps its bits until a call multiplies it as a GEMM (the first
// such call packs it, once): a 3×3 convolution that always runs as Winograd (which reads bits)
// then never pays for unpacking the panels.
type BF16Weight struct {
	Rows, Cols int
	conv       bool // A panels of a convolution (else B panels of a Linear)
	taps       int  // convolution with channel pairs: KH·KW (0: plain k order)
	kc         int  // pair steps per k block (0: the weight is never packed)
	pad        int  // Rows rounded up to whole panels
	wide       bool // a convolution packed for the float32 kernels (bf16_widen.go), not in pairs

	data atomic.Pointer[bf16Data] // replaced (not changed) when the bits are packed
	mu   sync.Mutex               // serialises packing
}

// bf16Data is a BF16Weight's values: the pair panels, the row-major bits, or (a Linear off the
// pair path) float32-layout panels of bf16 bits.
type bf16Data struct {
	panels []uint32
	bits   []uint16
	taps   []uint32      // a convolution's, in the direct AMX convolution's order (amxTapPairs)
	kk     int           // the taps of taps' kernel
	widen  *PackedWeight // a Linear's
	a16    *bf16APanels  // a convolution's (bf16_widen.go)
}

// packed reports whether the values are panels of either kind.
func (d *bf16Data) packed() bool {
	return d.panels != nil || d.widen != nil || d.a16 != nil || d.taps != nil
}

// PackLinearBF16 prepares a Linear's bf16 weight matrix w (out×in, row-major bits): on the bf16
// pair path pair panels, otherwise the float32 kernels' panels of its bf16 bits; either replaces
// w (the caller may drop w).
func PackLinearBF16(w []uint16, out, in int) *BF16Weight {
	if out < 0 || in < 0 || len(w) < out*in {
		panic(fmt.Sprintf("kernels: bf16 weight of %d values as %d×%d", len(w), out, in))
	}
	p := &BF16Weight{Rows: out, Cols: in}
	p.data.Store(&bf16Data{bits: w[:out*in]})
	kp := (in + 1) / 2
	if out == 0 || kp == 0 {
		return p
	}
	if !bf16Pairs() {
		p.data.Store(&bf16Data{widen: packWeight16(w, out, in, true)})
		return p
	}
	p.pad = (out + sgemmNR - 1) / sgemmNR * sgemmNR
	p.kc = sgemmKBlock(p.pad, kp, false)
	if amxOn() && kp%amxKT == 0 {
		// For AMX (linearAMXPacked reads the panels in place) the whole k in one block where it
		// fits amxKCMax, else in blocks of whole k tiles: each block loads and stores the
		// accumulators again (Xeon with AMX, 2 cores, 2048×2560→640: blocks of 320 pairs
		// 1.33 TFLOP/s, one block 1.63–1.79).
		nb := (kp + amxKCMax - 1) / amxKCMax
		p.kc = ((kp+nb-1)/nb + amxKT - 1) / amxKT * amxKT
	}
	p.pack()
	return p
}

// PackConvBF16 prepares a convolution's bf16 weights w (k×c×kh×kw bits) of the given stride as
// PackLinearBF16 does: A panels in the channel-pair order when c is even; a kernel wider than 1×1
// is packed by its first GEMM (Conv2DBF16Packed). On AMX a stride-1 convolution the direct
// convolution serves is put in its order now instead (a strided one keeps its bits, which
// amxConv2D reads).
func PackConvBF16(w []uint16, k, c, kh, kw, stride int) *BF16Weight {
	ckk := c * kh * kw
	if k < 0 || ckk < 0 || len(w) < k*ckk {
		panic(fmt.Sprintf("kernels: bf16 weight of %d values as %d×%d×%d×%d", len(w), k, c, kh, kw))
	}
	p := &BF16Weight{Rows: k, Cols: ckk, conv: true}
	p.data.Store(&bf16Data{bits: w[:k*ckk]})
	kp := (ckk + 1) / 2
	if k == 0 || kp == 0 {
		return p
	}
	if amxOn() && amxConvWeightFits(k, c, kh, kw) {
		// The direct AMX convolution's order, now (the bits become garbage, Reordered), or the
		// bits as they are, which amxConv2D reads in place.
		if stride == 1 {
			p.packTaps(kh * kw)
		}
		return p
	}
	if !bf16Pairs() { // the float32 kernels' A panels (bf16_widen.go)
		p.wide, p.kc = true, sgemmKBlock(0, ckk, false)
		if kh*kw == 1 {
			p.pack()
		}
		return p
	}
	if c%2 == 0 {
		p.taps = kh * kw
	}
	p.pad = (k + sgemmMR - 1) / sgemmMR * sgemmMR
	p.kc = sgemmKBlock(0, kp, false) // as sgemmRun blocks k for a packed A
	if kh*kw == 1 {
		p.pack()
	}
	return p
}

// pack replaces the bits by the pair panels (once; p.kc set means the weight may be packed).
func (p *BF16Weight) pack() *bf16Data {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.data.Load()
	if d.packed() || p.kc == 0 {
		return d
	}
	if p.wide {
		d = &bf16Data{a16: newBF16APanels(d.bits, p.Rows, p.Cols)}
		p.data.Store(d)
		return d
	}
	kp := (p.Cols + 1) / 2
	f := sgemmAligned(p.pad * kp)
	if p.conv {
		src := sgemmSrc{half: d.bits, brain: true, ld: p.Cols, pairs: true, pairK: p.Cols, pairTaps: p.taps}
		for pc := 0; pc < kp; pc += p.kc {
			packAPairs(f[p.pad*pc:], nil, &src, 0, p.Rows, pc, min(p.kc, kp-pc))
		}
	} else {
		src := sgemmSrc{half: d.bits, brain: true, ld: p.Cols, trans: true, pairs: true, pairK: p.Cols}
		for pc := 0; pc < kp; pc += p.kc {
			packBPairs(f[p.pad*pc:], nil, &src, pc, min(p.kc, kp-pc), 0, p.Rows)
		}
	}
	d = &bf16Data{panels: u32s(f)}
	p.data.Store(d)
	return d
}

// packTaps replaces the bits by the direct AMX convolution's weights for kernels of taps taps
// (once).
func (p *BF16Weight) packTaps(taps int) *bf16Data {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.data.Load()
	if d.taps != nil {
		return d
	}
	bits := d.bits
	if d.packed() {
		bits = make([]uint16, p.Rows*p.Cols)
		p.unpack(bits, d)
	}
	t := make([]uint32, p.Rows*p.Cols/2)
	amxTapPairs(t, bits, p.Rows, p.Cols/taps, taps)
	d = &bf16Data{taps: t, kk: taps}
	p.data.Store(d)
	return d
}

// PackNow packs a weight that PackConvBF16 left as bits (as its first GEMM would), reporting
// whether this call packed it: the caller may then account for the bits it dropped.
func (p *BF16Weight) PackNow() bool {
	if p.kc == 0 || p.wide == bf16Pairs() || p.data.Load().packed() {
		return false
	}
	p.mu.Lock()
	done := p.data.Load().packed()
	p.mu.Unlock()
	if done {
		return false
	}
	p.pack()
	return true
}

// pairPanels returns the weight's pair panels, nil while it holds bits.
func (p *BF16Weight) pairPanels() []uint32 { return p.data.Load().panels }

// Packed reports whether the weight is held as pair panels (now).
func (p *BF16Weight) Packed() bool { return p.data.Load().panels != nil }

// Reordered reports whether the weight is held in the direct AMX convolution's order (the bits it
// was given are no longer used).
func (p *BF16Weight) Reordered() bool { return p.data.Load().taps != nil }

// Widened reports whether the weight is held as float32-layout panels of bf16 bits, widened to
// float32 a block at a time by every call (packed off the pair path).
func (p *BF16Weight) Widened() bool {
	d := p.data.Load()
	return d.widen != nil || d.a16 != nil
}

// Bytes returns the memory the weight takes (now).
func (p *BF16Weight) Bytes() int64 {
	d := p.data.Load()
	n := 4*int64(len(d.panels)) + 2*int64(len(d.bits)) + 4*int64(len(d.taps))
	if d.widen != nil {
		n += d.widen.Bytes()
	}
	if d.a16 != nil {
		n += 2 * int64(len(d.a16.bits))
	}
	return n
}

// String names the weight by its shape and address.
func (p *BF16Weight) String() string {
	return fmt.Sprintf("bf16[%d×%d]@%p", p.Rows, p.Cols, p)
}

// Bits returns the weight as row-major bf16 bits: the kept bits, or the panels unpacked into a
// new slice.
func (p *BF16Weight) Bits() []uint16 {
	d := p.data.Load()
	if !d.packed() {
		return d.bits
	}
	w := make([]uint16, p.Rows*p.Cols)
	p.unpack(w, d)
	return w
}

// unpack writes the panels' values into w (Rows×Cols, row-major): one panel of rows at a time,
// reading its slots in order, the panels split among the workers.
func (p *BF16Weight) unpack(w []uint16, d *bf16Data) {
	switch {
	case d.widen != nil:
		d.widen.unpack16(w)
		return
	case d.a16 != nil:
		d.a16.unpack(w)
		return
	case d.taps != nil:
		amxTapBits(w, d.taps, p.Rows, p.Cols/d.kk, d.kk)
		return
	}
	panels := d.panels
	kp := (p.Cols + 1) / 2
	mr := sgemmNR
	if p.conv {
		mr = sgemmMR
	}
	w = w[:p.Rows*p.Cols]
	np := (p.Rows + mr - 1) / mr
	parallelFor(np, max(1, 1<<16/max(1, mr*p.Cols)), func(lo, hi int) {
		for q := lo; q < hi; q++ {
			rows := min(mr, p.Rows-q*mr)
			for pc := 0; pc < kp; pc += p.kc {
				kc := min(p.kc, kp-pc)
				blk := panels[p.pad*pc+q*mr*kc : p.pad*pc+(q+1)*mr*kc]
				for r := 0; r < rows; r++ {
					p.unpackRow(w[(q*mr+r)*p.Cols:(q*mr+r+1)*p.Cols], blk[r:], mr, pc, kc)
				}
			}
		}
	})
}

// unpackRow writes the pair steps [pc, pc+kc) of one row, whose slots are s[0], s[mr], …,
// into row (Cols values).
func (p *BF16Weight) unpackRow(row []uint16, s []uint32, mr, pc, kc int) {
	if p.taps > 0 { // pair step c2·taps + t holds channels 2·c2 (low) and 2·c2+1 (high) at tap t
		taps := p.taps
		for i := 0; i < kc; {
			c2, t := (pc+i)/taps, (pc+i)%taps
			n := min(taps-t, kc-i) // the steps of channel pair c2 in this block
			lo := row[2*c2*taps+t : 2*c2*taps+t+n]
			hi := row[(2*c2+1)*taps+t : (2*c2+1)*taps+t+n]
			src := s[i*mr : (i+n-1)*mr+1]
			for j := range lo {
				v := src[j*mr]
				lo[j], hi[j] = uint16(v), uint16(v>>16)
			}
			i += n
		}
		return
	}
	for i := 0; i < kc; i++ {
		v := s[i*mr]
		q := 2 * (pc + i)
		row[q] = uint16(v)
		if q+1 < len(row) {
			row[q+1] = uint16(v >> 16)
		}
	}
}

// bf16BitsBuf is a pooled buffer of unpacked weights.
type bf16BitsBuf struct{ w []uint16 }

var bf16BitsPool = sync.Pool{New: func() any { return new(bf16BitsBuf) }}

// withBits runs f on the weight's row-major bits: the kept ones, or the panels unpacked into a
// pooled buffer (for the paths that read bits: Winograd, the widened fallback).
func (p *BF16Weight) withBits(f func(w []uint16)) {
	d := p.data.Load()
	if !d.packed() {
		f(d.bits)
		return
	}
	b := bf16BitsPool.Get().(*bf16BitsBuf)
	defer bf16BitsPool.Put(b)
	if cap(b.w) < p.Rows*p.Cols {
		b.w = make([]uint16, p.Rows*p.Cols)
	}
	w := b.w[:p.Rows*p.Cols]
	p.unpack(w, d)
	f(w)
}

// Conv2DWinogradBF16Packed is Conv2DWinogradBF16 with a weight from PackConvBF16 (unpacked into
// a pooled buffer first when it holds panels: one pass over the weights, small against the
// convolutions Winograd is chosen for).
func Conv2DWinogradBF16Packed(p ConvParams, x []float32, w *BF16Weight, bias, y []float32) {
	w.checkConv(p)
	w.withBits(func(bits []uint16) { Conv2DWinogradBF16(p, x, bits, bias, y) })
}

func (w *BF16Weight) checkConv(p ConvParams) {
	if !w.conv || w.Rows != p.K || w.Cols != p.C*p.KH*p.KW {
		panic(fmt.Sprintf("kernels: bf16 weight %v does not fit the convolution %+v", w, p))
	}
}

// Conv2DBF16Packed is Conv2DBF16 with a weight from PackConvBF16.
func Conv2DBF16Packed(p ConvParams, x []float32, w *BF16Weight, bias, y []float32) {
	if p.OutPlane != 0 && !ConvBF16OutPlane(p) {
		panic("kernels: Conv2DBF16Packed does not take OutPlane here")
	}
	w.checkConv(p)
	if amxOn() && amxConvApplies(p) { // the direct AMX convolution on the weights in tap order
		d := w.data.Load()
		if d.taps == nil {
			d = w.packTaps(p.KH * p.KW)
		}
		amxConvDirect(amxKernelAsm, p, x, d.taps, bias, y)
		return
	}
	if p.K >= amxMinRows && amxOn() { // AMX reads the weights' rows (amx.go): Conv2DBF16 on the bits
		w.withBits(func(bits []uint16) { Conv2DBF16(p, x, bits, bias, y) })
		return
	}
	if w.kc == 0 || w.wide == bf16Pairs() { // not packable, or packed for the other path (tests switch)
		w.withBits(func(bits []uint16) { Conv2DBF16(p, x, bits, bias, y) })
		return
	}
	d := w.data.Load()
	if !d.packed() {
		d = w.pack()
	}
	if w.wide { // the float32 kernels, widening a block of A panels at a time (bf16_widen.go)
		conv2D(p, x, &sgemmSrc{a16: d.a16}, bias, y)
		return
	}
	a := sgemmSrc{data: unsafe.Slice((*float32)(unsafe.Pointer(&d.panels[0])), len(d.panels)), ld: w.pad,
		pairs: true, pairK: w.Cols, paired: true, pairTaps: w.taps}
	if w.taps > 0 {
		if conv2DPaired(p, x, &a, bias, y, 0) {
			return
		}
		if w.taps > 1 { // an input too large to pair: the per-panel path, in plain k order
			w.withBits(func(bits []uint16) { Conv2DBF16(p, x, bits, bias, y) })
			return
		}
	}
	conv2D(p, x, &a, bias, y) // 1×1 channel pairs are the plain k order
}

// packAPrepacked is packAPairs for an A of panels packed at load by PackConvBF16 (s.paired;
// s.data holds the panels, s.ld the rows rounded up to whole panels): it copies the
// panels of rows [i0, i0+mc), pair steps [p0, p0+kc), when they form one k block of the packing
// (as the GEMM driver asks for them), else gathers them slot by slot.
func packAPrepacked(dst []float32, s *sgemmSrc, i0, mc, p0, kc int) {
	kp := (s.pairK + 1) / 2
	pkc := sgemmKBlock(0, kp, false) // PackConvBF16's k block
	n := (mc + sgemmMR - 1) / sgemmMR * sgemmMR * kc
	if p0%pkc == 0 && kc == min(pkc, kp-p0) && i0%sgemmMR == 0 {
		off := s.ld*p0 + i0*kc
		copy(dst[:n], s.data[off:off+n])
		return
	}
	for ir := 0; ir < mc; ir += sgemmMR {
		for p := 0; p < kc; p++ {
			q := p0 + p
			pc := q / pkc * pkc
			kb := min(pkc, kp-pc)
			for r := 0; r < sgemmMR; r++ {
				row := i0 + ir + r
				var v float32
				if ir+r < mc && row < s.ld {
					v = s.data[s.ld*pc+(row/sgemmMR)*sgemmMR*kb+(q-pc)*sgemmMR+row%sgemmMR]
				}
				dst[ir*kc+p*sgemmMR+r] = v
			}
		}
	}
}
