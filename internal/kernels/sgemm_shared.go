package kernels

import "sync"

// The shared-operand scheme runs a GEMM on several workers. The operand that every worker needs
// in full (B when rows are split, A when columns are) is packed once, by all workers together,
// into a shared buffer; then workers take chunks of the other dimension from an atomic counter,
// so a worker slowed down by other load on the machine simply takes fewer chunks. Without it each
// worker would pack the whole shared operand itself, and a static split would wait for the
// slowest worker.

// sgemmSharedMax caps the shared packed operand (floats, 64 MiB); larger operands use the static
// split. Every convolution of SD 1.x (up to 2560 input channels at 16×16, 1920 at 32×32) fits.
const sgemmSharedMax = 16 << 20

// sgemmSharedChunkM is how many MC row blocks a chunk of a row-split GEMM holds.
const sgemmSharedChunkM = 4

// sgemmShared is a pooled buffer for a packed shared operand.
type sgemmShared struct{ buf []float32 }

var sgemmSharedPool = sync.Pool{New: func() any { return new(sgemmShared) }}

// sharedFits reports whether the shared operand of the split is small enough to pack whole.
func (j *sgemmJob) sharedFits() bool { return j.sharedLen() <= sgemmSharedMax }

// sharedLen is the size of the packed shared operand: all k blocks of B (n rounded up to NR) when
// rows are split, of A (m rounded up to MR) when columns are.
func (j *sgemmJob) sharedLen() int {
	if j.splitM {
		return (j.n + sgemmNR - 1) / sgemmNR * sgemmNR * j.k
	}
	return (j.m + sgemmMR - 1) / sgemmMR * sgemmMR * j.k
}

// sharedPad is the padded extent of the shared operand's packed dimension (n or m).
func (j *sgemmJob) sharedPad() int { return j.sharedLen() / j.k }

// runShared packs the shared operand on w workers, then computes chunks dynamically.
func (j *sgemmJob) runShared(w int) {
	var sh *sgemmShared
	if pw := j.b.packed; j.splitM && pw != nil && !pw.Half() {
		j.sharedBuf = pw.f32 // packed at load, in the shared layout
	} else {
		sh = sgemmSharedPool.Get().(*sgemmShared)
		if need := j.sharedLen(); cap(sh.buf) < need {
			sh.buf = sgemmAligned(need)
		}
		sh.buf = sh.buf[:cap(sh.buf)]
		j.shared, j.sharedBuf = sh, sh.buf
		// Panels of the shared operand, packed in parallel.
		panels := (j.n + sgemmNR - 1) / sgemmNR
		if !j.splitM {
			panels = (j.m + sgemmMR - 1) / sgemmMR
		}
		if w > 1 {
			parallelFor(panels, 8, j.packShared)
		} else {
			j.packShared(0, panels) // no method value: nothing to allocate on one core
		}
	}

	// Chunks of the other dimension: a few MC row blocks, or columns enough that the C block (m × columns)
	// stays in L2 across the k blocks.
	if j.splitM {
		// Several MC blocks, so that each k block of the shared B is reused from cache.
		j.chunk = sgemmSharedChunkM * sgemmMC / sgemmMR
	} else {
		cols := max(8*sgemmNR, min(sgemmNC, (1<<17)/j.m/sgemmNR*sgemmNR))
		j.chunk = cols / sgemmNR
	}
	j.chunk = max(1, min(j.chunk, j.units/(2*w))) // at least two chunks per worker
	if j.avx512 && j.chunk > 1 {
		j.chunk &^= 1 // whole 12×32 tiles
	}
	j.nChunks = (j.units + j.chunk - 1) / j.chunk
	j.next.Store(0)
	if w > 1 {
		parallelFor(w, 1, j.work)
	} else {
		j.work(0, 1)
	}
	j.sharedBuf = nil
	if sh != nil {
		sgemmSharedPool.Put(sh)
	}
}

// packShared packs panels [lo, hi) of the shared operand for every k block. Block pc of B starts
// at nPad·pc (panel q at q·NR·kc within it), and likewise for A with mPad.
func (j *sgemmJob) packShared(lo, hi int) {
	buf := sgemmBufPool.Get().(*sgemmBuf)
	pad := j.sharedPad()
	for pc := 0; pc < j.k; pc += j.kcMax {
		kc := min(j.kcMax, j.k-pc)
		if j.splitM {
			j0 := lo * sgemmNR
			dst := j.sharedBuf[pad*pc+j0*kc:]
			if blk := j.packB(buf, dst, pc, kc, j0, min(hi*sgemmNR, j.n)-j0); &blk[0] != &dst[0] {
				copy(dst, blk)
			}
		} else {
			i0 := lo * sgemmMR
			packA(j.sharedBuf[pad*pc+i0*kc:], buf.half, &j.a, i0, min(hi*sgemmMR, j.m)-i0, pc, kc)
		}
	}
	sgemmBufPool.Put(buf)
}

// work computes chunks taken from the job's counter until none is left.
func (j *sgemmJob) work(_, _ int) {
	buf := sgemmBufPool.Get().(*sgemmBuf)
	pad := j.sharedPad()
	for {
		ch := int(j.next.Add(1)) - 1
		if ch >= j.nChunks {
			break
		}
		lo, hi := ch*j.chunk, min((ch+1)*j.chunk, j.units)
		for pc := 0; pc < j.k; pc += j.kcMax {
			kc := min(j.kcMax, j.k-pc)
			beta := j.beta
			if pc > 0 {
				beta = 1
			}
			shared := j.sharedBuf[pad*pc : pad*(pc+kc)]
			if j.splitM { // rows [i0, i1) against the whole shared B, in equal blocks of ≤ MC rows
				i0, i1 := lo*sgemmMR, min(hi*sgemmMR, j.m)
				blocks := (i1 - i0 + sgemmMC - 1) / sgemmMC
				mr := sgemmMR
				if j.avx512 {
					mr = 2 * sgemmMR // whole 12-row tiles (MC is a multiple of 12)
				}
				mcb := ((i1-i0+blocks-1)/blocks + mr - 1) / mr * mr
				for ic := i0; ic < i1; ic += mcb {
					mc := min(mcb, i1-ic)
					packA(buf.a, buf.half, &j.a, ic, mc, pc, kc)
					j.macro(buf, buf.a, shared, mc, j.n, kc, ic, 0, beta, pc == 0)
				}
				continue
			}
			// Columns [j0, j1) against the whole shared A, MC rows at a time.
			j0, j1 := lo*sgemmNR, min(hi*sgemmNR, j.n)
			bblk := j.packB(buf, buf.b, pc, kc, j0, j1-j0)
			for ic := 0; ic < j.m; ic += sgemmMC {
				j.macro(buf, shared[ic*kc:], bblk, min(sgemmMC, j.m-ic), j1-j0, kc, ic, j0, beta, pc == 0)
			}
		}
	}
	sgemmBufPool.Put(buf)
}

// sgemmColumnsL2 is the packed B chunk (floats, 256 KiB) a runColumns chunk aims at, so that the
// chunk stays in L2 next to the k block of A while every row block of A passes over it.
const sgemmColumnsL2 = 1 << 16

// runColumns computes a column-split job whose A is read in place (few rows) on w workers that
// take chunks of columns from the job's counter, so a worker that starts late (a wake-up on a
// busy machine can take a good part of a small GEMM) or runs slower takes fewer chunks instead of
// being waited for. Chunks also bound the packed B block each row block of A passes over.
func (j *sgemmJob) runColumns(w int) {
	cols := max(2*sgemmNR, sgemmColumnsL2/j.kcMax/sgemmNR*sgemmNR)
	j.chunk = max(1, min(cols/sgemmNR, j.units/(3*w))) // at least three chunks per worker
	if j.avx512 && j.chunk > 1 {
		j.chunk &^= 1 // whole 32-column tiles
	}
	j.nChunks = (j.units + j.chunk - 1) / j.chunk
	j.next.Store(0)
	if w > 1 && j.nChunks > 1 {
		parallelFor(min(w, j.nChunks), 1, j.workColumns)
	} else {
		j.workColumns(0, 1) // no method value: nothing to allocate on one core
	}
}

// workColumns computes column chunks taken from the job's counter until none is left. With B a
// float32 weight packed at load, each k block's computation prefetches the block after it (the
// next k block of the chunk, or the first of the next chunk, taken from the counter when the
// chunk's last k block starts so that a late worker still finds chunks left).
func (j *sgemmJob) workColumns(_, _ int) {
	buf := sgemmBufPool.Get().(*sgemmBuf)
	var w *PackedWeight
	if p := j.b.packed; p != nil && p.f32 != nil && j.avx512 {
		w = p
	}
	ch := int(j.next.Add(1)) - 1
	for ch < j.nChunks {
		j0, j1 := ch*j.chunk*sgemmNR, min((ch+1)*j.chunk*sgemmNR, j.n)
		next := -1 // not taken yet
		for jc := j0; jc < j1; jc += sgemmNC {
			nc := min(sgemmNC, j1-jc)
			for pc := 0; pc < j.k; pc += j.kcMax {
				kc := min(j.kcMax, j.k-pc)
				bblk := j.packB(buf, buf.b, pc, kc, jc, nc)
				beta := j.beta
				if pc > 0 {
					beta = 1
				}
				buf.pf, buf.pfAt = nil, 0
				if w != nil {
					switch {
					case pc+kc < j.k:
						buf.pf = w.block(nil, pc+kc, min(j.kcMax, j.k-pc-kc), jc, nc)
					case jc+nc < j1:
						buf.pf = w.block(nil, 0, min(j.kcMax, j.k), jc+nc, min(sgemmNC, j1-jc-nc))
					default:
						next = int(j.next.Add(1)) - 1
						if next < j.nChunks {
							n0 := next * j.chunk * sgemmNR
							buf.pf = w.block(nil, 0, min(j.kcMax, j.k), n0, min(sgemmNC, min((next+1)*j.chunk*sgemmNR, j.n)-n0))
						}
					}
				}
				for ic := 0; ic < j.m; ic += sgemmMC {
					j.macroDirect(buf, bblk, min(sgemmMC, j.m-ic), nc, kc, ic, jc, pc, beta)
				}
			}
		}
		if next < 0 {
			next = int(j.next.Add(1)) - 1
		}
		ch = next
	}
	buf.pf = nil // no reference to the weight from the pool
	sgemmBufPool.Put(buf)
}
