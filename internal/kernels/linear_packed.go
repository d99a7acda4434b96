package kernels

import "fmt"

// PackedWeight is a Linear layer's weight matrix (out×in, PyTorch layout) packed once, at load,
// into the B panels the GEMM micro-kernels read: for each k block (in split into equal blocks of
// at most sgemmKC steps, or one block where the GEMM skips k blocking), panels of sgemmNR output
// columns interleaved along k, zero-padded to a whole panel. A float32 matrix is then used in
// place on every call instead of being transposed and packed again; a half-precision one is kept
// as half bits in the same layout and widened by a contiguous F16C conversion, which costs far
// less than the strided widen-and-transpose of a row-major half matrix. It replaces the row-major
// matrix in memory: the same number of values, rounded up to whole panels.
type PackedWeight struct {
	In, Out int
	kc      int       // k block size of the panels
	nPad    int       // Out rounded up to sgemmNR
	f32     []float32 // the panels as float32, or
	f16     []uint16  // as IEEE half bits (bfloat16 bits with brain)
	brain   bool
}

// PackWeight packs the float32 weight matrix w (out×in, row-major).
func PackWeight(w []float32, out, in int) *PackedWeight {
	p := newPackedWeight(out, in)
	if p.nPad*in == 0 {
		return p
	}
	p.f32 = sgemmAligned(p.nPad * in)
	src := sgemmSrc{data: w[:out*in], ld: in, trans: true}
	tmp := make([]float32, sgemmNR*p.kc)
	for pc := 0; pc < in; pc += p.kc {
		kc := min(p.kc, in-pc)
		packB(p.f32[p.nPad*pc:], tmp, &src, pc, kc, 0, out)
	}
	return p
}

// PackWeightF16 packs the weight matrix w (out×in, row-major) held as IEEE half bits, keeping
// them as half bits.
func PackWeightF16(w []uint16, out, in int) *PackedWeight {
	return packWeight16(w, out, in, false)
}

// packWeight16 packs the weight matrix w (out×in, row-major) of IEEE half or, with brain,
// bfloat16 bits, keeping the bits.
func packWeight16(w []uint16, out, in int, brain bool) *PackedWeight {
	p := newPackedWeight(out, in)
	p.brain = brain
	if p.nPad*in == 0 {
		return p
	}
	w = w[:out*in]
	p.f16 = make([]uint16, p.nPad*in)
	for pc := 0; pc < in; pc += p.kc {
		kc := min(p.kc, in-pc)
		blk := p.f16[p.nPad*pc:]
		for j0 := 0; j0 < out; j0 += sgemmNR {
			d := blk[j0*kc : (j0+sgemmNR)*kc]
			for x := 0; x < min(sgemmNR, out-j0); x++ {
				row := w[(j0+x)*in+pc : (j0+x)*in+pc+kc]
				for q, v := range row {
					d[q*sgemmNR+x] = v
				}
			}
		}
	}
	return p
}

func newPackedWeight(out, in int) *PackedWeight {
	if out < 0 || in < 0 {
		panic(fmt.Sprintf("kernels: packed weight of %d×%d", out, in))
	}
	nPad := (out + sgemmNR - 1) / sgemmNR * sgemmNR
	return &PackedWeight{In: in, Out: out, kc: sgemmKBlock(nPad, in, out <= sgemmDirectMaxN), nPad: nPad}
}

// Half reports whether the panels are held as 16-bit floats (IEEE half bits; bfloat16 for the
// widened form of a BF16Weight).
func (p *PackedWeight) Half() bool { return p.f16 != nil }

// Bytes returns the memory the panels take.
func (p *PackedWeight) Bytes() int64 { return 4*int64(len(p.f32)) + 2*int64(len(p.f16)) }

// Unpack returns the matrix as float32, out×in row-major (for tests and inspection).
func (p *PackedWeight) Unpack() []float32 {
	w := make([]float32, p.Out*p.In)
	tmp := make([]float32, p.nPad*p.kc)
	for pc := 0; pc < p.In; pc += p.kc {
		kc := min(p.kc, p.In-pc)
		blk := p.block(tmp, pc, kc, 0, p.Out)
		for o := 0; o < p.Out; o++ {
			q := o / sgemmNR
			for k := 0; k < kc; k++ {
				w[o*p.In+pc+k] = blk[q*sgemmNR*kc+k*sgemmNR+o%sgemmNR]
			}
		}
	}
	return w
}

// unpack16 writes the 16-bit panels' values into w (Out×In bits, row-major).
func (p *PackedWeight) unpack16(w []uint16) {
	w = w[:p.Out*p.In]
	for pc := 0; pc < p.In; pc += p.kc {
		kc := min(p.kc, p.In-pc)
		blk := p.f16[p.nPad*pc:]
		for o := 0; o < p.Out; o++ {
			pan := blk[o/sgemmNR*sgemmNR*kc+o%sgemmNR:]
			row := w[o*p.In+pc : o*p.In+pc+kc]
			for k := range row {
				row[k] = pan[k*sgemmNR]
			}
		}
	}
}

// String names the matrix by its shape and the address of its panels, so that ops holding
// different weights never hash alike.
func (p *PackedWeight) String() string {
	var ptr any
	switch {
	case p.f32 != nil:
		ptr = &p.f32[0]
	case p.f16 != nil:
		ptr = &p.f16[0]
	}
	kind := "f32"
	switch {
	case p.brain:
		kind = "bf16"
	case p.f16 != nil:
		kind = "f16"
	}
	return fmt.Sprintf("packed-%s[%d×%d]@%p", kind, p.Out, p.In, ptr)
}

// block returns the packed panels of k block pc (kc steps) for columns [j0, j0+nc), j0 a multiple
// of sgemmNR: a view of float32 panels, or half panels widened into dst.
func (p *PackedWeight) block(dst []float32, pc, kc, j0, nc int) []float32 {
	lo := p.nPad*pc + j0*kc
	hi := lo + (nc+sgemmNR-1)/sgemmNR*sgemmNR*kc
	if p.f32 != nil {
		return p.f32[lo:hi:hi]
	}
	if p.brain {
		BF16ToF32(dst[:hi-lo], p.f16[lo:hi])
	} else {
		F16ToF32(dst[:hi-lo], p.f16[lo:hi])
	}
	return dst[: hi-lo : hi-lo]
}

// LinearPacked is Linear with the packed weight w: y = x·wᵀ + bias for x rows×w.In, bias
// w.Out values or nil, y rows×w.Out.
func LinearPacked(x []float32, rows int, w *PackedWeight, bias []float32, y []float32) {
	chunk := linearRowChunk(rows, w)
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		linear(x[r0*w.In:], n, w.In, &sgemmSrc{packed: w}, w.Out, bias, y[r0*w.Out:])
	}
}

// linearChunkWeight is the fewest weight values (in·out) for which LinearPacked chunks rows; a
// variable so that tests reach the chunked path on small shapes.
var linearChunkWeight = 1 << 20

// linearRowChunk is how many rows of x a LinearPacked call multiplies at a time: all of them, or,
// for a few hundred rows by a large weight, balanced chunks of at most sgemmDirectMaxM.
// A chunk's GEMM then reads A in place and splits columns among the workers, so each streams its
// share of the weight once per chunk, prefetched (sgemm_shared.go's runColumns); split by rows,
// every chunk of rows streamed the whole weight, which comes from memory in a model's forward.
// On the Zen 5 (2 cores, weights cycled so they come from memory), 512×5120→1280 took 28–30 ms
// in two chunks against 33.6 whole, 512×1280→3840 20.6–20.9 against 24.5–26.0, 408×640→5120
// 8.5 against 10.1–10.3, 512×1280→1280 6.6 against 7.4–7.9; from 816 rows, or 2048, chunks were
// no faster (816×320→2560 4.1–4.3 against 4.1–4.5, 2048×640→1920 16.1–16.4 against 15.2). With
// half weights (widened per chunk) the same five 384–512-row shapes took 100 ms in chunks against
// 105.5 whole (1280→3840 17.8 against 20.4, 640→5120 9.2 against 11.7, but 1280→1280 7.9
// against 6.8).
func linearRowChunk(rows int, w *PackedWeight) int {
	if rows <= sgemmDirectMaxM || rows > 3*sgemmDirectMaxM || w.In*w.Out < linearChunkWeight {
		return max(rows, 1)
	}
	n := (rows + sgemmDirectMaxM - 1) / sgemmDirectMaxM
	return (rows + n - 1) / n
}

// sgemmKBlock is the k block size of a GEMM with n columns (nPad rounded up to sgemmNR) and k
// steps: k split into equal blocks of at most sgemmKC, or all of k at once when A is read in
// place (aDirect), the whole packed B fits in L2 and an edge panel of A fits the A buffer.
func sgemmKBlock(nPad, k int, aDirect bool) int {
	if aDirect && k*nPad <= sgemmDirectNoBlock && k*sgemmMR <= sgemmMC*sgemmKC {
		return max(k, 1)
	}
	kBlocks := max(1, (k+sgemmKC-1)/sgemmKC)
	return max(1, (k+kBlocks-1)/kBlocks)
}
