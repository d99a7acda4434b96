package kernels

import "unsafe"

// The bf16 attention on AMX tiles. It is the column layout's bf16 attention (attention_col.go,
// attention_bf16.go: query tiles of attnBQ lanes, the same online softmax in float32, its
// probabilities rounded to bf16 key pairs) with its two products on the tile kernel
// (amxKernelFunc, amx_conv.go), which reads the column layout's tiles as they are:
//
//   - S^T = K·Q̃^T: A is the head's keys as rows of bf16 pairs of head-dim values (packed once per
//     head, zero-padded to whole k tiles), B is Q̃^T, whose row t holds pair t of every query
//     lane: a B tile is 16 lanes of 16 such rows, 192 bytes apart. C is S^T itself.
//   - O^T += V^T·P^T: A is V^T as rows of bf16 pairs of consecutive keys per head-dim value
//     (packed once per head), B is the softmax's P^T (row j: the lanes' key pair j), C is O^T,
//     loaded and stored around the product so that the softmax's rescaling stays as it is.
//
// The 48 lanes are a 32-lane call and a 16-lane one (whose second B tile repeats the first and
// stores the same values twice); head dims and keys are padded with zeros to the tiles.

// attnAMXOffs are the byte offsets of k tiles of a B whose rows are lanes of attnBQ values: 16 rows
// a tile.
var attnAMXOffs = func() []int {
	o := make([]int, 512/amxKT)
	for t := range o {
		o[t] = t * amxKT * attnBQ * 4
	}
	return o
}()

// attnAMXKBC bounds the keys of a key tile of the AMX attention; attnAMXKeys/HeadDim (rounded
// down to 32) sets it below that. Longer key tiles than the column layout's 128 make fewer,
// longer P·V products (Xeon with AMX, 2 cores, 2×8×4096×4096×40: 82–86 ms with 128 keys, 75 ms
// with 256, 77 with 512; 2×8×1024×1024×80: 7.7–7.8, 7.3, 7.1).
const attnAMXKBC, attnAMXKeys = 256, 32768

// attnAMXDims returns the padded sizes of the AMX attention: k tiles of a head's pairs (ktq),
// head-dim rows of V^T and O^T (a multiple of 32), keys of the packed K and V^T (a multiple of
// 32), and the keys of a key tile (a multiple of 32).
func attnAMXDims(d, nk int) (ktq, dRows, nkA, kbc int) {
	ktq = (attnPairs(d) + amxKT - 1) / amxKT
	dRows = (d + amxMR - 1) / amxMR * amxMR
	nkA = (nk + 2*amxKT - 1) / (2 * amxKT) * 2 * amxKT
	kbc = max(2*amxKT, attnAMXKeys/((d+7)&^7)&^(2*amxKT-1))
	kbc = min(kbc, attnAMXKBC)
	return
}

// packHeadAMX packs head h of batch b's keys (rows of ktq·16 pairs) and values (V^T: dRows rows
// of nkA/2 key pairs) into slot of sc.
func (j *attnJob) packHeadAMX(sc *attnScratch, b, h, slot int) {
	p := j.p
	d, w := p.HeadDim, p.Heads*p.HeadDim
	ktq, dRows, nkA, _ := attnAMXDims(d, p.Nk)
	lk, lv := ktq*amxKT, nkA/2
	k := j.k[b*p.Nk*w+h*d:]
	v := j.v[b*p.Nk*w+h*d:]
	kp := u32s(sc.kp)[slot*nkA*lk : (slot+1)*nkA*lk]
	vt := u32s(sc.vp)[slot*dRows*lv : (slot+1)*dRows*lv]
	for key := 0; key < nkA; key++ {
		row := u32to16(kp[key*lk : (key+1)*lk])
		if key >= p.Nk {
			clear(row)
			continue
		}
		F32ToBF16(row[:d], k[key*w:key*w+d])
		clear(row[d:])
	}
	r := sc.bf16Row(2 * d)
	r0, r1 := r[:d], r[d:]
	for pr := 0; pr < lv; pr++ {
		clear(r0)
		clear(r1)
		if key := 2 * pr; key < p.Nk {
			F32ToBF16(r0, v[key*w:key*w+d])
		}
		if key := 2*pr + 1; key < p.Nk {
			F32ToBF16(r1, v[key*w:key*w+d])
		}
		for c := 0; c < d; c++ {
			vt[c*lv+pr] = uint32(r0[c]) | uint32(r1[c])<<16
		}
	}
	clear(vt[d*lv:])
}

// tileAMX is tileCol on AMX tiles (see above).
func (j *attnJob) tileAMX(sc *attnScratch, b, h, slot, q0 int) {
	p := j.p
	kern := j.amx
	d, w := p.HeadDim, p.Heads*p.HeadDim
	dp := (d + 7) &^ 7
	ktq, dRows, nkA, kbc := attnAMXDims(d, p.Nk)
	lk, lv := ktq*amxKT, nkA/2
	nq := min(attnBQ, p.Nq-q0)
	if useAVX2 {
		j.prefetchNext(b, h, q0, nq)
	}
	qsrc := j.q[(b*p.Nq+q0)*w+h*d:]
	_ = qsrc[(nq-1)*w+d-1]
	qt := u32s(sc.qt)[:lk*attnBQ]
	if attnBF16Asm() {
		attnLoadQT512BF16(&qsrc[0], w, nq, d, p.Scale*log2e32, &qt[0])
	} else {
		attnLoadQTBF16Go(qsrc, w, nq, d, p.Scale*log2e32, qt)
	}
	clear(qt[attnPairs(d)*attnBQ:]) // the k tiles' padding pairs
	o, m, l, kEnd := sc.tileStart(p, q0, nq, dRows)
	kp := u32s(sc.kp)[slot*nkA*lk : (slot+1)*nkA*lk]
	vt := u32s(sc.vp)[slot*dRows*lv : (slot+1)*dRows*lv]
	s := sc.s[:attnAMXKBC*attnBQ]
	pt := sc.bf[:attnBQ*attnAMXKBC/2]
	offs := attnAMXOffs
	const bs = attnBQ * 4 // bytes from one B row (or C row) to the next
	batch := &sc.amx
	batch.kern = kern
	for k0 := 0; k0 < kEnd; k0 += kbc {
		nk := min(kbc, kEnd-k0)
		nkr := (nk + attnKP - 1) &^ (attnKP - 1)
		n32 := (nk + 2*amxKT - 1) &^ (2*amxKT - 1)
		// S^T, 32 keys by 32 lanes and by the last 16 lanes at a time.
		for kb := 0; kb < n32; kb += amxMR {
			a := kp[(k0+kb)*lk:]
			c := s[kb*attnBQ:]
			batch.add(a, lk, qt, qt[sgemmNR:], offs, offs[ktq-1], bs, c, c[sgemmNR:], attnBQ, amxZeroRow[:], amxZeroRow[:], 0, ktq)
			batch.add(a, lk, qt[2*sgemmNR:], qt[2*sgemmNR:], offs, offs[ktq-1], bs, c[2*sgemmNR:], c[2*sgemmNR:], attnBQ, amxZeroRow[:], amxZeroRow[:], 0, ktq)
		}
		batch.run()
		attnMaskCol(s, nk, nkr, q0-k0, p.Causal)
		if attnBF16Asm() {
			attnSoftmaxT512BF16(&s[0], nkr, &m[0], &l[0], &o[0], dp/attnKP, &pt[0])
		} else {
			attnSoftmaxTGo(s, nkr, m, l, o, dp/attnKP, pt)
		}
		clear(pt[nkr/2*attnBQ : n32/2*attnBQ]) // the key pairs past the tile's last
		// O^T += V^T·P^T, 32 head-dim rows at a time.
		kt := n32 / (2 * amxKT)
		for r := 0; r < dRows; r += amxMR {
			a := vt[r*lv+k0/2:]
			c := o[r*attnBQ:]
			batch.add(a, lv, pt, pt[sgemmNR:], offs, offs[kt-1], bs, c, c[sgemmNR:], attnBQ, c, c[sgemmNR:], attnBQ, kt)
			c2 := c[2*sgemmNR:]
			batch.add(a, lv, pt[2*sgemmNR:], pt[2*sgemmNR:], offs, offs[kt-1], bs, c2, c2, attnBQ, c2, c2, attnBQ, kt)
		}
		batch.run()
	}
	dst := j.out[(b*p.Nq+q0)*w+h*d:]
	_ = dst[(nq-1)*w+d-1]
	if useAVX2 && useAVX512 {
		attnStoreOT512(&o[0], &l[0], nq, d, &dst[0], w)
	} else {
		attnStoreOTGo(o, l, nq, d, dst, w)
	}
}

// log2e32 is log2(e) as the column layout scales Q̃ by it.
const log2e32 = 1.4426950408889634

// attnAMXScratch sizes sc for the AMX attention of j (slots packed heads), every tile the kernel
// reads or writes 64-byte aligned, as are their rows: a tile row split over two cache lines made
// the kernel several times slower (Xeon with AMX: 240 against 25 ns a k tile of 4 products).
func (j *attnJob) attnAMXScratch(sc *attnScratch, slots int) {
	p := j.p
	ktq, dRows, nkA, _ := attnAMXDims(p.HeadDim, p.Nk)
	sc.kp = attnGrowAligned(sc.kp, slots*nkA*ktq*amxKT)
	sc.vp = attnGrowAligned(sc.vp, slots*dRows*nkA/2)
	sc.qt = attnGrowAligned(sc.qt, ktq*amxKT*attnBQ)
	sc.o = attnGrowAligned(sc.o, dRows*attnBQ)
	sc.s = attnGrowAligned(sc.s, attnBQ*attnAMXKBC)
	// P^T's tile, and after the column layout's tiles the row buffer of packHeadAMX (bf16Row).
	if n := max(attnBQ*attnAMXKBC/2, attnBQ*attnKBC/2+p.HeadDim+1); cap(sc.bf) < n || uintptr(unsafe.Pointer(unsafe.SliceData(sc.bf)))%64 != 0 {
		sc.bf = u32s(sgemmAligned(n))
	}
}

// attnGrowAligned is attnGrow for a buffer that must start on a 64-byte boundary.
func attnGrowAligned(b []float32, n int) []float32 {
	if cap(b) < n || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%64 != 0 {
		return sgemmAligned(n)
	}
	return b[:n]
}
