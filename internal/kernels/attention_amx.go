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
// longer P·V products (Xeon with AMX, 2 cores, query tiles in pairs, 2×8×4096×4096×40: 73 ms
// with 128 keys, 68 with 256, 62–64 with 512 to 1024; 2×8×1024×1024×80: 8.0, 7.6, 7.5–7.7).
const attnAMXKBC, attnAMXKeys = 512, 32768

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
	k := j.kb[b*p.Nk*w+h*d:] // rounded to bf16 for all heads (roundKV)
	v := j.vb[b*p.Nk*w+h*d:]
	kp := u32s(sc.kp)[slot*nkA*lk : (slot+1)*nkA*lk]
	vt := u32s(sc.vp)[slot*dRows*lv : (slot+1)*dRows*lv]
	for key := 0; key < nkA; key++ {
		row := u32to16(kp[key*lk : (key+1)*lk])
		if key >= p.Nk {
			clear(row)
			continue
		}
		copy(row[:d], k[key*w:key*w+d])
		clear(row[d:])
	}
	for pr := 0; pr < lv; pr++ {
		var r0, r1 []uint16
		if key := 2 * pr; key < p.Nk {
			r0 = v[key*w : key*w+d]
		}
		if key := 2*pr + 1; key < p.Nk {
			r1 = v[key*w : key*w+d]
		}
		for c := 0; c < d; c++ {
			var lo, hi uint32
			if r0 != nil {
				lo = uint32(r0[c])
			}
			if r1 != nil {
				hi = uint32(r1[c]) << 16
			}
			vt[c*lv+pr] = lo | hi
		}
	}
	clear(vt[d*lv:])
}

// roundKV rounds j's keys and values to bf16 once for all heads and workers (j.kb, j.vb, from a
// pool): a head's rows are short (40 values at 64×64), too short to round one by one.
func (j *attnJob) roundKV() {
	p := j.p
	n := p.Batch * p.Nk * p.Heads * p.HeadDim
	bp := amxRoundPool.Get().(*[]uint16)
	if cap(*bp) < 2*n {
		*bp = make([]uint16, 2*n)
	}
	j.kvb = bp
	j.kb, j.vb = (*bp)[:n], (*bp)[n:2*n]
	parallelFor(n, 1<<15, func(lo, hi int) {
		F32ToBF16(j.kb[lo:hi], j.k[lo:hi])
		F32ToBF16(j.vb[lo:hi], j.v[lo:hi])
	})
}

// releaseKV returns roundKV's buffer to its pool.
func (j *attnJob) releaseKV() {
	if j.kvb != nil {
		amxRoundPool.Put(j.kvb)
	}
	j.kvb, j.kb, j.vb = nil, nil, nil
}

// tileAMX is tileCol on AMX tiles (see above), for the queries from q0 of head h of batch b in
// attnAMXHalves tiles of attnBQ lanes (one where the attention is causal), whose 16-lane blocks
// the tile calls take two at a time: with one tile the last call repeats its last block (a
// quarter of the products wasted), with two none is.
func (j *attnJob) tileAMX(sc *attnScratch, b, h, slot, q0 int) {
	p := j.p
	d, w := p.HeadDim, p.Heads*p.HeadDim
	dp := (d + 7) &^ 7
	ktq, dRows, nkA, kbc := attnAMXDims(d, p.Nk)
	lk, lv := ktq*amxKT, nkA/2
	var nqs [attnAMXHalves]int // queries of each tile
	nh, nq := 0, 0
	for ; nh < j.amxHalves() && q0+nq < p.Nq; nh++ {
		nqs[nh] = min(attnBQ, p.Nq-q0-nq)
		nq += nqs[nh]
	}
	if useAVX2 {
		j.prefetchNext(b, h, q0, nq)
	}
	const (
		sRows  = attnAMXKBC     // score rows (keys) of a tile's S^T
		ptRows = attnAMXKBC / 2 // key-pair rows of a tile's P^T
	)
	qt, s, pt, o := u32s(sc.qt), sc.s, u32s(sc.pt), sc.o
	m, l := sc.m, sc.l
	for hf := 0; hf < nh; hf++ {
		qsrc := j.q[(b*p.Nq+q0+hf*attnBQ)*w+h*d:]
		_ = qsrc[(nqs[hf]-1)*w+d-1]
		qh := qt[hf*lk*attnBQ : (hf+1)*lk*attnBQ]
		if attnBF16Asm() {
			attnLoadQT512BF16(&qsrc[0], w, nqs[hf], d, p.Scale*log2e32, &qh[0])
		} else {
			attnLoadQTBF16Go(qsrc, w, nqs[hf], d, p.Scale*log2e32, qh)
		}
		clear(qh[attnPairs(d)*attnBQ:]) // the k tiles' padding pairs
		clear(o[hf*dRows*attnBQ : (hf+1)*dRows*attnBQ])
		for i := hf * attnBQ; i < (hf+1)*attnBQ; i++ {
			m[i], l[i] = attnMasked, 0
		}
	}
	kEnd := p.Nk
	if p.Causal {
		kEnd = min(p.Nk, q0+nq)
	}
	kp := u32s(sc.kp)[slot*nkA*lk : (slot+1)*nkA*lk]
	vt := u32s(sc.vp)[slot*dRows*lv : (slot+1)*dRows*lv]
	// Block L of 16 lanes is lanes 16·(L%3) of tile L/3; a call takes blocks L and L+1 (or L
	// twice, the last of an odd count).
	blocks := 3 * nh
	lane := func(L int) (hf, off int) { return L / 3, L % 3 * sgemmNR }
	offs := attnAMXOffs
	const bs = attnBQ * 4 // bytes from one B row (or C row) to the next
	batch := &sc.amx
	batch.kern = j.amx
	for k0 := 0; k0 < kEnd; k0 += kbc {
		nk := min(kbc, kEnd-k0)
		nkr := (nk + attnKP - 1) &^ (attnKP - 1)
		n32 := (nk + 2*amxKT - 1) &^ (2*amxKT - 1)
		// S^T, 32 keys by 32 lanes at a time.
		for kb := 0; kb < n32; kb += amxMR {
			a := kp[(k0+kb)*lk:]
			for L := 0; L < blocks; L += 2 {
				h0, l0 := lane(L)
				h1, l1 := lane(min(L+1, blocks-1))
				b0, b1 := qt[h0*lk*attnBQ+l0:], qt[h1*lk*attnBQ+l1:]
				c0, c1 := s[(h0*sRows+kb)*attnBQ+l0:], s[(h1*sRows+kb)*attnBQ+l1:]
				batch.add(a, lk, b0, b1, offs, offs[ktq-1], bs, c0, c1, attnBQ, amxZeroRow[:], amxZeroRow[:], 0, ktq)
			}
		}
		batch.run()
		for hf := 0; hf < nh; hf++ {
			sh, ph := s[hf*sRows*attnBQ:(hf+1)*sRows*attnBQ], pt[hf*ptRows*attnBQ:(hf+1)*ptRows*attnBQ]
			mh, lh, oh := m[hf*attnBQ:(hf+1)*attnBQ], l[hf*attnBQ:(hf+1)*attnBQ], o[hf*dRows*attnBQ:(hf+1)*dRows*attnBQ]
			attnMaskCol(sh, nk, nkr, q0+hf*attnBQ-k0, p.Causal)
			if attnBF16Asm() {
				attnSoftmaxT512BF16(&sh[0], nkr, &mh[0], &lh[0], &oh[0], dp/attnKP, &ph[0])
			} else {
				attnSoftmaxTGo(sh, nkr, mh, lh, oh, dp/attnKP, ph)
			}
			clear(ph[nkr/2*attnBQ : n32/2*attnBQ]) // the key pairs past the tile's last
		}
		// O^T += V^T·P^T, 32 head-dim rows by 32 lanes at a time.
		kt := n32 / (2 * amxKT)
		for r := 0; r < dRows; r += amxMR {
			a := vt[r*lv+k0/2:]
			for L := 0; L < blocks; L += 2 {
				h0, l0 := lane(L)
				h1, l1 := lane(min(L+1, blocks-1))
				b0, b1 := pt[h0*ptRows*attnBQ+l0:], pt[h1*ptRows*attnBQ+l1:]
				c0, c1 := o[(h0*dRows+r)*attnBQ+l0:], o[(h1*dRows+r)*attnBQ+l1:]
				batch.add(a, lv, b0, b1, offs, offs[kt-1], bs, c0, c1, attnBQ, c0, c1, attnBQ, kt)
			}
		}
		batch.run()
	}
	for hf := 0; hf < nh; hf++ {
		dst := j.out[(b*p.Nq+q0+hf*attnBQ)*w+h*d:]
		oh, lh := o[hf*dRows*attnBQ:], l[hf*attnBQ:]
		_ = dst[(nqs[hf]-1)*w+d-1]
		if useAVX2 && useAVX512 {
			attnStoreOT512(&oh[0], &lh[0], nqs[hf], d, &dst[0], w)
		} else {
			attnStoreOTGo(oh, lh, nqs[hf], d, dst, w)
		}
	}
}

// attnAMXHalves is the query tiles of attnBQ lanes tileAMX takes at once.
const attnAMXHalves = 2

// attnAMXPairs lets tests run the AMX attention a tile at a time (it must give the same bits).
var attnAMXPairs = true

// amxHalves is the query tiles of a task of the AMX attention: attnAMXHalves, or one where the
// attention is causal (a tile's keys end at its last query).
func (j *attnJob) amxHalves() int {
	if j.p.Causal || !attnAMXPairs {
		return 1
	}
	return attnAMXHalves
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
	sc.qt = attnGrowAligned(sc.qt, attnAMXHalves*ktq*amxKT*attnBQ)
	sc.o = attnGrowAligned(sc.o, attnAMXHalves*dRows*attnBQ)
	sc.s = attnGrowAligned(sc.s, attnAMXHalves*attnBQ*attnAMXKBC)
	sc.pt = attnGrowAligned(sc.pt, attnAMXHalves*attnBQ*attnAMXKBC/2)
	sc.m = attnGrow(sc.m, attnAMXHalves*attnBQ)
	sc.l = attnGrow(sc.l, attnAMXHalves*attnBQ)
}

// attnGrowAligned is attnGrow for a buffer that must start on a 64-byte boundary.
func attnGrowAligned(b []float32, n int) []float32 {
	if cap(b) < n || uintptr(unsafe.Pointer(unsafe.SliceData(b)))%64 != 0 {
		return sgemmAligned(n)
	}
	return b[:n]
}
