package kernels

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"
)

// The bf16 Linear on weights packed at load (PackLinearBF16). The input is rounded to bf16 pairs
// a chunk of rows at a time into a per-worker buffer (row-major, kp = ⌈in/2⌉ pairs a row: the
// rounding is one vectorised pass, no interleaving), and the in-place-A kernels read those rows
// while the weight's k block of B panels stays in L2: no packing of either operand per call.

const (
	// bf16LinChunk bounds a worker's rounded input rows (bytes): they are reused for every
	// column block, and stay in L2 beside a B block.
	bf16LinChunk = 256 << 10

	// bf16LinNC bounds the columns of a B block (a multiple of 32): with kc ≤ sgemmKC pairs,
	// 512 columns are 640 KiB of panels, inside a 1 MiB L2.
	bf16LinNC = 512

	bf16LinMR = 2 * sgemmMR // rows of the widest kernel
)

// bf16LinBuf is one worker's rounded input chunk and edge scratch.
type bf16LinBuf struct {
	a    []uint32
	apad []uint32 // a 6-row A panel padded with zero rows
	tile [sgemmMR * sgemmNR]float32
}

var bf16LinBufs = sync.Pool{New: func() any { return new(bf16LinBuf) }}

// LinearBF16Packed is LinearBF16 with a weight from PackLinearBF16: y = x·wᵀ + bias for x
// rows×w.Cols, bias w.Rows values or nil, y rows×w.Rows.
func LinearBF16Packed(x []float32, rows int, w *BF16Weight, bias, y []float32) {
	linearBF16Packed(x, rows, w, bias, w.Rows, y)
}

// LinearBF16PackedParts is LinearBF16Packed with the output split into parts as
// LinearPackedParts does: columns [i·part, (i+1)·part) stored as the rows×part matrix at
// y[i·rows·part:] (w.Rows a multiple of part, part a multiple of LinearPartAlign).
func LinearBF16PackedParts(x []float32, rows int, w *BF16Weight, bias []float32, part int, y []float32) {
	checkParts(w.Rows, part)
	linearBF16Packed(x, rows, w, bias, part, y)
}

func linearBF16Packed(x []float32, rows int, w *BF16Weight, bias []float32, part int, y []float32) {
	if w.conv {
		panic(fmt.Sprintf("kernels: LinearBF16Packed on the convolution weight %v", w))
	}
	in, out := w.Cols, w.Rows
	if rows <= 0 || out <= 0 {
		return
	}
	if in > 0 {
		_ = x[rows*in-1]
	}
	_ = y[rows*out-1]
	if bias != nil {
		_ = bias[out-1]
	}
	// o places C's elements: row r, column j at o.cOff(r, j) (the parts are sgemmJob's batched
	// C: part columns per block, rows·part apart).
	o := &sgemmJob{c: y, ldc: out, bias: bias}
	if part != out {
		o.ldc, o.cCols, o.cStride = part, part, rows*part
	}
	d := w.data.Load()
	if d.widen != nil { // packed off the pair path: the float32 kernels, widening a block at a time
		if part != out {
			LinearPackedParts(x, rows, d.widen, bias, part, y)
			return
		}
		LinearPacked(x, rows, d.widen, bias, y)
		return
	}
	// Panels in k blocks larger than sgemmKC were packed for AMX (PackLinearBF16), which takes
	// every row count then; off AMX (tests switch it) they are read as bits.
	amxPacked := w.kc > sgemmKC
	if d.panels == nil || !bf16Pairs() || amxPacked && !amxOn() {
		w.withBits(func(bits []uint16) {
			if part != out {
				LinearBF16Parts(x, rows, in, bits, out, bias, part, y)
				return
			}
			LinearBF16(x, rows, in, bits, out, bias, y)
		})
		return
	}
	if in == 0 {
		fillParts(rows, out, bias, part, y)
		return
	}
	// AMX at any row count: its padding rows cost less than VDPBF16PS, which on CPUs with AMX may
	// run at half the FMA rate (bf16_select.go).
	if amxOn() && linearAMXPacked(amxKernelAsm, x, rows, w, bias, y, o.ldc, o.cCols, o.cStride) { // AMX (amx.go)
		return
	}
	kp := (in + 1) / 2
	mu := (rows + bf16LinMR - 1) / bf16LinMR
	chunk := max(1, bf16LinChunk/(4*bf16LinMR*kp)) // 12-row units per rounded chunk
	if rows*out*in < 1<<18 {                       // small: inline
		for u := 0; u < mu; u += chunk {
			linearPairsBlock(x, rows, w, d.panels, o, u*bf16LinMR, min(mu, u+chunk)*bf16LinMR, 0, out)
		}
		return
	}
	// Chunks of rows (all columns), or with few rows chunks of 32·colChunk columns (all rows,
	// rounded by every worker), taken in turn by the workers as they finish.
	nw := workers()
	byRows := mu >= 2*nw
	chunk = min(chunk, max(1, mu/(4*nw))) // a few chunks per worker, to balance
	n := (mu + chunk - 1) / chunk
	colChunk := 0
	if !byRows {
		colChunk = max(1, (out+31)/32/(4*nw))
		n = ((out+31)/32 + colChunk - 1) / colChunk
	}
	var next atomic.Int64
	parallelFor(nw, 1, func(_, _ int) {
		for {
			i := int(next.Add(1) - 1)
			if i >= n {
				return
			}
			if byRows {
				linearPairsBlock(x, rows, w, d.panels, o, i*chunk*bf16LinMR, min(mu, (i+1)*chunk)*bf16LinMR, 0, out)
				continue
			}
			c0, c1 := 32*i*colChunk, min(out, 32*(i+1)*colChunk)
			for u := 0; u < mu; u += chunk {
				linearPairsBlock(x, rows, w, d.panels, o, u*bf16LinMR, min(mu, u+chunk)*bf16LinMR, c0, c1)
			}
		}
	})
}

// linearPairsBlock computes rows [r0, r1) (clipped to rows) and columns [c0, c1) of C (placed by
// o, with o.bias), c0 a multiple of 32.
func linearPairsBlock(x []float32, rows int, w *BF16Weight, panels []uint32, o *sgemmJob, r0, r1, c0, c1 int) {
	in := w.Cols
	kp := (in + 1) / 2
	r1 = min(r1, rows)
	if r0 >= r1 {
		return
	}
	buf := bf16LinBufs.Get().(*bf16LinBuf)
	defer bf16LinBufs.Put(buf)
	n := (r1 - r0) * kp
	if cap(buf.a) < n {
		buf.a = make([]uint32, n)
	}
	a := buf.a[:n]
	if in%2 == 0 { // the rows are contiguous pairs already
		F32ToBF16(u16s32(a), x[r0*in:r1*in])
	} else {
		for r := r0; r < r1; r++ {
			row := a[(r-r0)*kp : (r-r0+1)*kp]
			row[kp-1] = 0 // the last pair's odd half
			F32ToBF16(u16s32(row)[:in], x[r*in:(r+1)*in])
		}
	}
	asm := !bf16Twin
	for jc := c0; jc < c1; jc += bf16LinNC {
		nc := min(bf16LinNC, c1-jc)
		for pc := 0; pc < kp; pc += w.kc {
			kc := min(w.kc, kp-pc)
			first := pc == 0
			bblk := panels[w.pad*pc+jc*kc:]
			for r := r0; r < r1; {
				mr := min(r1-r, bf16LinMR)
				ar := a[(r-r0)*kp+pc:]
				if !asm {
					linearPairsGeneric(ar, kp, mr, kc, bblk, o, r, jc, nc, first)
					r += mr
					continue
				}
				if mr < sgemmMR { // the last rows: a zero-padded panel
					if cap(buf.apad) < sgemmMR*kc {
						buf.apad = make([]uint32, sgemmMR*sgemmKC)
					}
					pad := buf.apad[:sgemmMR*kc]
					clear(pad)
					for i := 0; i < mr; i++ {
						copy(pad[i*kc:(i+1)*kc], ar[i*kp:i*kp+kc])
					}
					linearPairsEdge(buf, pad, kc, mr, kc, bblk, o, r, jc, 0, nc, first)
					r += mr
					continue
				}
				if mr < bf16LinMR {
					mr = sgemmMR
				}
				jr := 0
				for ; jr+2*sgemmNR <= nc; jr += 2 * sgemmNR {
					j := jc + jr
					var bs []float32
					mode, beta := 0, float32(1)
					if first {
						beta = 0
						if o.bias != nil {
							bs, mode = o.bias[j:j+2*sgemmNR], 2
						}
					}
					bf16Kernel512Direct(mr, kc, ar, kp, bblk[jr*kc:], o.c, o.cOff(r, j), o.cOff(r, j+sgemmNR), o.ldc, 1, beta, bs, mode)
				}
				if jr < nc {
					linearPairsEdge(buf, ar, kp, mr, kc, bblk, o, r, jc, jr, nc, first)
				}
				r += mr
			}
		}
	}
}

// linearPairsEdge computes the columns [jc+jr, jc+nc) (fewer than 32) of rows [r, r+mr) with the
// 6×16 kernel: A's rows at a[i·lda:] (6 readable rows per 6-row step), whole 16-column tiles in
// place, a partial one through the scratch tile.
func linearPairsEdge(buf *bf16LinBuf, a []uint32, lda, mr, kc int, bblk []uint32, o *sgemmJob, r, jc, jr, nc int, first bool) {
	for i := 0; i < mr; i += sgemmMR {
		rows := min(sgemmMR, mr-i)
		ai := a[i*lda:]
		for x := jr; x < nc; x += sgemmNR {
			cols := min(sgemmNR, nc-x)
			j := jc + x
			bp := bblk[x*kc:]
			off := o.cOff(r+i, j)
			if rows == sgemmMR && cols == sgemmNR {
				beta := float32(1)
				if first {
					if o.bias != nil {
						o.fillBias(r+i, j, sgemmMR, sgemmNR)
					} else {
						beta = 0
					}
				}
				bf16Kernel6x16DirectAny(kc, ai, lda, bp, o.c[off:], o.ldc, beta)
				continue
			}
			t := buf.tile[:]
			bf16Kernel6x16DirectAny(kc, ai, lda, bp, t, sgemmNR, 0)
			for q := 0; q < rows; q++ {
				yr := o.c[off+q*o.ldc : off+q*o.ldc+cols]
				for c, v := range t[q*sgemmNR : q*sgemmNR+cols] {
					switch {
					case !first:
						yr[c] += v
					case o.bias != nil:
						yr[c] = v + o.bias[j+c]
					default:
						yr[c] = v
					}
				}
			}
		}
	}
}

// linearPairsGeneric is the plain-Go twin of a row block's step: rows [r, r+mr) of A (pairs at
// a[i·lda:]), k block of kc pairs, columns [jc, jc+nc): each element sums its kc pair products
// in order as VDPBF16PS does, then adds the bias (first block) or C.
func linearPairsGeneric(a []uint32, lda, mr, kc int, bblk []uint32, o *sgemmJob, r, jc, nc int, first bool) {
	for i := 0; i < mr; i++ {
		ar := a[i*lda : i*lda+kc]
		for x := 0; x < nc; x++ {
			bp := bblk[(x/sgemmNR)*sgemmNR*kc+x%sgemmNR:]
			var acc float32
			for t, av := range ar {
				acc = bf16Dot(acc, av, bp[t*sgemmNR])
			}
			c := &o.c[o.cOff(r+i, jc+x)]
			switch {
			case !first:
				*c += acc
			case o.bias != nil:
				*c = acc + o.bias[jc+x]
			default:
				*c = acc
			}
		}
	}
}

// u16s32 views pair slots as twice as many 16-bit values (the even step first).
func u16s32(p []uint32) []uint16 {
	if len(p) == 0 {
		return nil
	}
	return u16s(unsafe.Slice((*float32)(unsafe.Pointer(&p[0])), len(p)))
}
