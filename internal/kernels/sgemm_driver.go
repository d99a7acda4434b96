package kernels

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// Blocking of the packed GEMM (the BLIS scheme). The micro-kernel computes an sgemmMR×sgemmNR tile of
// C from a packed A micro-panel (sgemmMR rows interleaved along k) and a packed B micro-panel
// (sgemmNR columns interleaved along k). sgemmKC bounds k so that a B micro-panel (20 KiB) and an A
// micro-panel (7.5 KiB) stay in a 32 KiB L1 (320 rather than 256 keeps the UNet's many k = 320
// products in one k block: measured 10–15% faster on them, the same elsewhere); sgemmMC bounds the
// packed A block (180 KiB) well inside a 1 MiB L2; sgemmNC bounds the packed B block (3.75 MiB,
// shared L3 on the targets).
const (
	sgemmMR = 6
	sgemmNR = 16
	sgemmKC = 320
	sgemmMC = 144
	sgemmNC = 3072

	// sgemmDirectMaxN is the widest n for which A is read in place rather than packed: the
	// kernel then keeps a 6-row A panel in L1 while the packed B block (≤ 512 columns) streams
	// from L2, which measured 8–20% faster than packing A for n from 128 to 512 (the UNet's
	// low-resolution convolutions, the text-conditioned projections) and the same at 320.
	sgemmDirectMaxN = 512

	// sgemmDirectMaxM is the most rows for which A is read in place at any n (B not a
	// convolution's, whose wide products keep the shared packed A): A (a text encoder's 2×77
	// tokens) then stays in L2 for every column chunk, and neither the packing nor the extra
	// pass that a shared packed A takes is paid (sgemm_shared.go's runColumns).
	sgemmDirectMaxM = 256

	// sgemmDirectNoBlock is the largest packed B (floats, 1 MiB) for which an in-place-A GEMM
	// skips k blocking.
	sgemmDirectNoBlock = 1 << 18
)

// sgemmSrc is one GEMM operand as the packers see it: a strided row-major matrix (optionally
// transposed) or, for B only, the implicit im2col matrix of one convolution input image.
type sgemmSrc struct {
	data  []float32
	half  []uint16 // instead of data: IEEE half-precision values, widened while packing (not transposed A)
	brain bool     // half holds bfloat16 values instead of IEEE halves

	// pairs packs the operand as bf16 pairs for the VDPBF16PS kernels, the GEMM's k then counting
	// pairs of k steps (bf16.go); pairK is the operand's real number of k steps.
	pairs  bool
	pairK  int
	paired bool // with pairs (B only): data already holds the bf16 pairs, packed as 32-bit values
	// pairTaps > 0 (A only, with pairs and brain): A is convolution weights whose k steps pair as
	// (channel 2c, 2c+1) at one of pairTaps taps, pair step c·pairTaps + tap (bf16_conv.go).
	pairTaps int
	ld       int
	trans    bool
	conv     bool       // B is im2col(data) for the geometry in cp
	cp       ConvParams // only when conv
	ow       int        // output width, only when conv

	// packed: B is a weight matrix packed at load (linear_packed.go); the job's k blocks are then
	// the packing's.
	packed *PackedWeight

	// a16 (A only): A is a convolution's bf16 weights packed at load into packA's panels
	// (BF16Weight off the pair path, bf16_packed.go); packA widens a block of them.
	a16 *bf16APanels

	// Batched B (conv, not transposed): columns [i·batchCols, (i+1)·batchCols) come from image i,
	// whose data start at data[i·batchStride]; batchCols is a multiple of sgemmNR.
	batchCols, batchStride int
}

// sgemmJob is one C = alpha·A·B + beta·C problem split over workers along M or N.
type sgemmJob struct {
	m, n, k     int
	alpha, beta float32
	a, b        sgemmSrc
	c           []float32
	ldc         int
	cCols       int // if > 0, C is batched like B: columns of image i at c[i·cStride:], row stride ldc
	cStride     int
	splitM      bool // split rows (else columns) among workers
	units       int  // number of MR (or NR) wide units to split
	avx         bool
	pairs       bool      // bf16 pair panels and kernels (bf16.go); k counts pairs
	avx512      bool      // 12×32 AVX-512 tiles where they fit (sgemm512.go)
	aDirect     bool      // A is read in place by the micro-kernel instead of packed
	bias        []float32 // if set, C starts as bias (per row if biasRows, else per column)
	biasRows    bool
	kcMax       int // k block size (k split into equal blocks of at most sgemmKC)

	// Shared-operand scheme (see sgemm_shared.go).
	shared    *sgemmShared
	sharedBuf []float32 // the packed shared operand: shared's buffer, or a weight packed at load
	chunk     int       // units per dynamically scheduled chunk
	nChunks   int
	next      atomic.Int64
}

var sgemmJobPool = sync.Pool{New: func() any { return new(sgemmJob) }}

// sgemmBuf holds one worker's packing buffers, 64-byte aligned.
type sgemmBuf struct {
	a, b []float32
	half []float32 // rows widened from half precision (up to MR rows of MC·KC/MR)
	tile [sgemmMR * sgemmNR]float32

	tile512 [sgemmMR * 2 * sgemmNR]float32 // a 6×32 AVX-512 edge tile

	// pf is the packed B block this worker computes next (a view of a weight packed at load),
	// which the in-place-A kernels prefetch into L2 while they compute the current block, pfAt
	// how far they got (sgemm_shared.go's workColumns). B comes from memory on its first use in
	// a forward: on an Intel Xeon (Sapphire Rapids) the first row panel of every block then ran
	// at a fraction of the kernel's speed.
	pf   []float32
	pfAt int
}

var sgemmBufPool = sync.Pool{New: func() any {
	return &sgemmBuf{a: sgemmAligned(sgemmMC * sgemmKC), b: sgemmAligned(sgemmKC * sgemmNC), half: make([]float32, sgemmMC*sgemmKC)}
}}

// sgemmAligned returns n float32 starting on a 64-byte boundary.
func sgemmAligned(n int) []float32 {
	s := make([]float32, n+16)
	off := int(uintptr(unsafe.Pointer(&s[0]))&63) / 4
	if off != 0 {
		off = 16 - off
	}
	return s[off : off+n : off+n]
}

// sgemmRun computes C = alpha·A·B + beta·C for m×k A and k×n B given as packer sources.
// With a bias (m values if biasRows, else n), C = alpha·A·B + bias instead: each tile of C is set
// to the bias just before its first update, while it is in cache, and beta is ignored.
// With cCols > 0 (k must be > 0), C is batched like B: the columns of image i, cCols of them, form
// a matrix at c[i·cStride:] with row stride ldc.
func sgemmRun(m, n, k int, alpha float32, a, b *sgemmSrc, beta float32, c []float32, ldc, cCols, cStride int, bias []float32, biasRows bool) {
	sgemmRunOn(workers(), m, n, k, alpha, a, b, beta, c, ldc, cCols, cStride, bias, biasRows)
}

// sgemmRunOn is sgemmRun on at most w goroutines (1: on the caller's, for callers that run
// several GEMMs in parallel themselves).
func sgemmRunOn(w, m, n, k int, alpha float32, a, b *sgemmSrc, beta float32, c []float32, ldc, cCols, cStride int, bias []float32, biasRows bool) {
	if m <= 0 || n <= 0 {
		return
	}
	if bias != nil {
		beta = 1 // accumulate onto the bias written by fillBias
	}
	if k <= 0 || alpha == 0 {
		if bias != nil {
			(&sgemmJob{c: c, ldc: ldc, bias: bias, biasRows: biasRows}).fillBias(0, 0, m, n)
		}
		sgemmScale(m, n, beta, c, ldc)
		return
	}
	if a.pairs {
		k = (k + 1) / 2 // bf16 pairs of k steps (bf16.go)
	}
	job := sgemmJobPool.Get().(*sgemmJob)
	job.m, job.n, job.k, job.alpha, job.beta, job.a, job.b, job.c, job.ldc, job.avx = m, n, k, alpha, beta, *a, *b, c, ldc, useAVX2
	job.avx512 = useAVX2 && useAVX512
	if job.pairs = a.pairs; job.pairs {
		job.avx, job.avx512 = !bf16Twin, !bf16Twin
	}
	job.bias, job.biasRows, job.cCols, job.cStride = bias, biasRows, cCols, cStride
	job.kcMax = sgemmKBlock(n, k, false)
	mu, nu := (m+sgemmMR-1)/sgemmMR, (n+sgemmNR-1)/sgemmNR
	// Split rows when there are enough of them (B is then the operand every worker needs whole),
	// unless only A is small enough to be packed once for all workers (sgemm_shared.go).
	job.splitM = mu >= 2*nu || mu >= 64
	if fitsA, fitsB := mu*sgemmMR*k <= sgemmSharedMax, nu*sgemmNR*k <= sgemmSharedMax; fitsA != fitsB {
		job.splitM = fitsB
	}
	// With few B panels a packed A block would be used only a few times, and few rows of A stay
	// in cache whole: read A in place.
	job.aDirect = !a.trans && !a.conv && a.a16 == nil && !a.pairs && (a.half == nil || b.packed == nil) && (n <= sgemmDirectMaxN || (m <= sgemmDirectMaxM && !job.splitM && !b.conv))
	if job.aDirect && a.half == nil {
		// When the whole packed B fits in L2 (and the B buffer), a packed edge panel of A the A
		// buffer: no k blocking, so the kernel streams long rows of A and keeps C in registers
		// for all of k. (Half A keeps k blocks of at most sgemmKC: macroDirect widens an mc×kc
		// block of it into buf.half.)
		job.kcMax = sgemmKBlock((n+sgemmNR-1)/sgemmNR*sgemmNR, k, true)
	}
	if b.packed != nil {
		job.kcMax = b.packed.kc
	}
	job.units = nu
	if job.splitM {
		job.units = mu
	}
	// Small problems run inline; otherwise each worker takes a contiguous range of units.
	grain := 1
	if flops := m * n * k; flops < 1<<18 {
		grain = job.units
	}
	switch {
	case grain >= job.units:
		job.run(0, job.units)
	case job.aDirect && !job.splitM:
		job.runColumns(w)
	case !job.aDirect && job.sharedFits():
		job.runShared(w) // also on one core: the shared operand is then packed only once
	case w <= 1:
		job.run(0, job.units)
	default:
		parallelFor(job.units, grain, job.run)
	}
	job.a, job.b, job.c, job.shared, job.bias = sgemmSrc{}, sgemmSrc{}, nil, nil, nil // drop references
	sgemmJobPool.Put(job)
}

// cOff is the offset of C's element (i, jj); a batched C's blocks never straddle two images.
func (j *sgemmJob) cOff(i, jj int) int {
	if j.cCols > 0 {
		img := jj / j.cCols
		return img*j.cStride + i*j.ldc + jj - img*j.cCols
	}
	return i*j.ldc + jj
}

// fillBias sets the mr×nr block of C at (i, jj) to the bias.
func (j *sgemmJob) fillBias(i, jj, mr, nr int) {
	base := j.cOff(i, jj)
	for r := 0; r < mr; r++ {
		row := j.c[base+r*j.ldc : base+r*j.ldc+nr]
		if j.biasRows {
			v := j.bias[i+r]
			if nr == sgemmNR { // 16-byte stores
				q := [4]float32{v, v, v, v}
				*(*[4]float32)(row[0:]), *(*[4]float32)(row[4:]) = q, q
				*(*[4]float32)(row[8:]), *(*[4]float32)(row[12:]) = q, q
				continue
			}
			for x := range row {
				row[x] = v
			}
		} else {
			for x := range row {
				row[x] = j.bias[jj+x]
			}
		}
	}
}

// sgemmScale sets C = beta·C (beta == 0 clears, ignoring NaNs).
func sgemmScale(m, n int, beta float32, c []float32, ldc int) {
	if beta == 1 {
		return
	}
	for i := 0; i < m; i++ {
		ci := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(ci)
			continue
		}
		for j := range ci {
			ci[j] *= beta
		}
	}
}

// run computes the units [lo, hi) of the job: rows [lo·MR, hi·MR) or columns [lo·NR, hi·NR).
func (j *sgemmJob) run(lo, hi int) {
	i0, i1, j0, j1 := 0, j.m, 0, j.n
	if j.splitM {
		i0, i1 = lo*sgemmMR, min(hi*sgemmMR, j.m)
	} else {
		j0, j1 = lo*sgemmNR, min(hi*sgemmNR, j.n)
	}
	if i0 >= i1 || j0 >= j1 {
		return
	}
	buf := sgemmBufPool.Get().(*sgemmBuf)
	j.runBlocks(buf, i0, i1, j0, j1)
	sgemmBufPool.Put(buf)
}

// runBlocks computes rows [i0, i1) by columns [j0, j1) of C with buf's packing buffers.
func (j *sgemmJob) runBlocks(buf *sgemmBuf, i0, i1, j0, j1 int) {
	kcMax := j.kcMax
	for jc := j0; jc < j1; jc += sgemmNC {
		nc := min(sgemmNC, j1-jc)
		for pc := 0; pc < j.k; pc += kcMax {
			kc := min(kcMax, j.k-pc)
			bblk := j.packB(buf, buf.b, pc, kc, jc, nc)
			beta := j.beta
			if pc > 0 {
				beta = 1
			}
			for ic := i0; ic < i1; ic += sgemmMC {
				mc := min(sgemmMC, i1-ic)
				if j.aDirect {
					j.macroDirect(buf, bblk, mc, nc, kc, ic, jc, pc, beta)
					continue
				}
				packA(buf.a, buf.half, &j.a, ic, mc, pc, kc)
				j.macro(buf, buf.a, bblk, mc, nc, kc, ic, jc, beta, pc == 0)
			}
		}
	}
}

// packB returns the packed k block pc (kc steps) of B's columns [j0, j0+nc): packed into dst, or
// for a weight packed at load a view of its panels (or its half panels widened into dst).
func (j *sgemmJob) packB(buf *sgemmBuf, dst []float32, pc, kc, j0, nc int) []float32 {
	if j.b.packed != nil {
		return j.b.packed.block(dst, pc, kc, j0, nc)
	}
	packB(dst, buf.half, &j.b, pc, kc, j0, nc)
	return dst
}

// macro multiplies the packed mc×kc A block ablk by the packed kc×nc B block bblk into C at (ic, jc). Each B
// micro-panel stays in L1 while the A block streams from L2.
func (j *sgemmJob) macro(buf *sgemmBuf, ablk, bblk []float32, mc, nc, kc, ic, jc int, beta float32, first bool) {
	for jr := j.macro512(buf, ablk, bblk, mc, nc, kc, ic, jc, beta, first); jr < nc; jr += sgemmNR {
		nr := min(sgemmNR, nc-jr)
		bp := bblk[jr*kc : jr*kc+sgemmNR*kc]
		for ir := 0; ir < mc; ir += sgemmMR {
			mr := min(sgemmMR, mc-ir)
			j.tile(buf, ablk[ir*kc:ir*kc+sgemmMR*kc], bp, kc, mr, nr, ic+ir, jc+jr, beta, first)
		}
	}
}

// macroDirect is macro with A read in place at (ic, pc): each 6-row A panel is used for all the
// (few) B micro-panels while it is in L1. Half-precision A is widened first, the mc×kc block
// into buf.half, so that it too is read by the in-place kernels instead of packed.
func (j *sgemmJob) macroDirect(buf *sgemmBuf, bblk []float32, mc, nc, kc, ic, jc, pc int, beta float32) {
	c, ldc, alpha := j.c, j.ldc, j.alpha
	a := j.a
	a.data = j.a.data[min(ic*j.a.ld+pc, len(j.a.data)):]
	if j.a.half != nil { // widen the block once, rows of kc values (kc ≤ sgemmKC: see sgemmRunOn)
		for r := 0; r < mc; r++ {
			packRow(&j.a, ic+r, pc, kc, buf.half[r*kc:(r+1)*kc])
		}
		a = sgemmSrc{data: buf.half[:mc*kc], ld: kc}
	}
	done512, done512Row := 0, 0
	for ir := 0; ir < mc; ir += sgemmMR {
		mr := min(sgemmMR, mc-ir)
		// With AVX-512, 12 (or the last 1 to 11) rows at a time take the columns that fill 32-wide tiles
		// (done512 of them, for rows below done512Row); the 6-row code below does the rest.
		jr0 := 0
		if ir < done512Row {
			jr0 = done512
		} else if j.avx512 {
			rows := min(2*sgemmMR, mc-ir)
			done512, done512Row = j.direct512(buf, rows, bblk, nc, kc, a.data[ir*a.ld:], a.ld, ic+ir, jc, pc, beta), ir+rows
			jr0 = done512
		}
		if mr < sgemmMR { // last rows: pack the partial panel (padded with zeros)
			if jr0 < nc {
				packA(buf.a, nil, &a, ir, mr, 0, kc)
			}
			for jr := jr0; jr < nc; jr += sgemmNR {
				nr := min(sgemmNR, nc-jr)
				j.tile(buf, buf.a[:sgemmMR*kc], bblk[jr*kc:jr*kc+sgemmNR*kc], kc, mr, nr, ic+ir, jc+jr, beta, pc == 0)
			}
			continue
		}
		ad, lda := a.data[ir*a.ld:], a.ld
		for jr := jr0; jr < nc; jr += sgemmNR {
			nr := min(sgemmNR, nc-jr)
			bp := bblk[jr*kc : jr*kc+sgemmNR*kc]
			off := j.cOff(ic+ir, jc+jr)
			if pc == 0 && j.bias != nil {
				j.fillBias(ic+ir, jc+jr, sgemmMR, nr)
			}
			if nr == sgemmNR {
				sgemmKernelDirect(j.avx, kc, ad, lda, bp, c[off:], ldc, alpha, beta)
				continue
			}
			if j.avx && nr <= sgemmNR/2 { // last panel of at most 8 columns: half the work
				if nr == sgemmNR/2 {
					sgemmKernelDirectNarrow(kc, ad, lda, bp, c[off:], ldc, alpha, beta)
					continue
				}
				sgemmKernelDirectNarrow(kc, ad, lda, bp, buf.tile[:], sgemmNR, 1, 0)
			} else {
				sgemmKernelDirect(j.avx, kc, ad, lda, bp, buf.tile[:], sgemmNR, 1, 0)
			}
			sgemmStoreTile(buf.tile[:], c[off:], ldc, sgemmMR, nr, alpha, beta)
		}
	}
}

// tile computes the mr×nr tile of C at (i, jj) from packed panels (first: in the first k block); edge tiles go through a
// scratch tile so that the kernel never writes outside C.
func (j *sgemmJob) tile(buf *sgemmBuf, ap, bp []float32, kc, mr, nr, i, jj int, beta float32, first bool) {
	if j.pairs {
		j.tileBF16(buf, ap, bp, kc, mr, nr, i, jj, beta, first)
		return
	}
	if first && j.bias != nil {
		j.fillBias(i, jj, mr, nr)
	}
	off := j.cOff(i, jj)
	if mr == sgemmMR && nr == sgemmNR {
		sgemmKernel(j.avx, kc, ap, bp, j.c[off:], j.ldc, j.alpha, beta)
		return
	}
	if j.avx && nr <= sgemmNR/2 { // last panel of at most 8 columns: half the work
		if mr == sgemmMR && nr == sgemmNR/2 {
			sgemmKernelNarrow(kc, ap, bp, j.c[off:], j.ldc, j.alpha, beta)
			return
		}
		sgemmKernelNarrow(kc, ap, bp, buf.tile[:], sgemmNR, 1, 0)
	} else {
		sgemmKernel(j.avx, kc, ap, bp, buf.tile[:], sgemmNR, 1, 0)
	}
	sgemmStoreTile(buf.tile[:], j.c[off:], j.ldc, mr, nr, j.alpha, beta)
}

// sgemmKernelGeneric is the plain-Go micro-kernel: the MR×NR tile C = alpha·Ap·Bp + beta·C.
func sgemmKernelGeneric(kc int, a, b, c []float32, ldc int, alpha, beta float32) {
	var acc [sgemmMR * sgemmNR]float32
	a, b = a[:kc*sgemmMR], b[:kc*sgemmNR]
	for p := 0; p < kc; p++ {
		bp := b[p*sgemmNR : p*sgemmNR+sgemmNR]
		for r := 0; r < sgemmMR; r++ {
			av := a[p*sgemmMR+r]
			row := acc[r*sgemmNR : r*sgemmNR+sgemmNR]
			for x, bv := range bp {
				row[x] += av * bv
			}
		}
	}
	sgemmStoreTile(acc[:], c, ldc, sgemmMR, sgemmNR, alpha, beta)
}

// sgemmKernelDirectGeneric is the plain-Go in-place-A micro-kernel: row r of A starts at a[r·lda].
func sgemmKernelDirectGeneric(kc int, a []float32, lda int, b, c []float32, ldc int, alpha, beta float32) {
	var acc [sgemmMR * sgemmNR]float32
	b = b[:kc*sgemmNR]
	for r := 0; r < sgemmMR; r++ {
		ar := a[r*lda : r*lda+kc]
		row := acc[r*sgemmNR : r*sgemmNR+sgemmNR]
		for p, av := range ar {
			bp := b[p*sgemmNR : p*sgemmNR+sgemmNR]
			for x, bv := range bp {
				row[x] += av * bv
			}
		}
	}
	sgemmStoreTile(acc[:], c, ldc, sgemmMR, sgemmNR, alpha, beta)
}

// sgemmStoreTile merges the first mr rows and nr columns of the tile t (row stride NR) into C:
// C = alpha·t + beta·C, not reading C when beta == 0.
func sgemmStoreTile(t, c []float32, ldc, mr, nr int, alpha, beta float32) {
	for r := 0; r < mr; r++ {
		ci := c[r*ldc : r*ldc+nr]
		tr := t[r*sgemmNR : r*sgemmNR+nr]
		if beta == 0 {
			for x := range ci {
				ci[x] = alpha * tr[x]
			}
		} else {
			for x := range ci {
				ci[x] = alpha*tr[x] + beta*ci[x]
			}
		}
	}
}
