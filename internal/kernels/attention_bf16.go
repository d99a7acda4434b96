package kernels

import (
	"math"
	"unsafe"
)

// bfloat16 attention. AttentionBF16 runs Attention's tiles (attention.go: the same tasks, query
// tiles of attnBQ rows, key tiles of attnBK, online softmax in float32) with both matrix products
// on bf16 pairs and VDPBF16PS:
//
//   - S = Q̃·Kᵀ: the scaled query tile is rounded to bf16 rows (pairs of consecutive head-dim
//     values in one 32-bit slot) that the in-place ("direct") bf16 GEMM kernels read as their A;
//     the keys are packed once per head into 16-key pair panels (slot (p, x) = key x's values
//     2p and 2p+1), their B.
//   - the online softmax of Attention, unchanged, in float32 on S.
//   - O += P·V: the probabilities are rounded to bf16 rows (pairs of consecutive keys), the A of
//     the same kernels; the values are packed once per head into pair panels per key tile
//     (slot (p, x) = column x of keys 2p and 2p+1), their B.
//
// The products of bf16 values are exact in float32 and accumulate in float32, so the error is
// that of rounding Q̃, K, V and P to bf16 (8 significant bits).

// AttentionBF16 is Attention with Q·Kᵀ and P·V multiplied in bfloat16 (VDPBF16PS) on CPUs with
// AVX512-BF16: q (scaled by Scale), k, v and the softmax probabilities are rounded to bf16,
// products accumulate in float32, and the softmax (maximum, exponentials, sums) stays float32.
// Elsewhere it is Attention.
func AttentionBF16(p AttentionParams, q, k, v, out []float32) {
	attention(p, q, k, v, out, bf16Pairs())
}

// attnBF16Asm reports whether the bf16 attention runs its assembly kernels (else the plain-Go
// twins, which round and accumulate the same way).
func attnBF16Asm() bool { return useBF16 && useAVX2 && useAVX512 && !bf16Twin }

// attnPairs is the number of bf16 pairs a head's row of d values takes.
func attnPairs(d int) int { return (d + 1) / 2 }

// attnGrowU32 returns b with length n, reallocated when its capacity is short.
func attnGrowU32(b []uint32, n int) []uint32 {
	if cap(b) < n {
		return make([]uint32, n)
	}
	return b[:n]
}

// bf16Rows returns sc.bf sized for head dimension d: the query tile (attnBQ rows of
// attnPairs(d) pairs), the probability tile (attnBQ rows of attnBK/2 pairs) and two row buffers
// of dp16 = dp rounded up to 16 bf16 values each.
func (sc *attnScratch) bf16Rows(d, dp16 int) (q16, p16 []uint32, r0, r1 []uint16) {
	nq, np := attnBQ*attnPairs(d), attnBQ*attnBK/2
	sc.bf = attnGrowU32(sc.bf, nq+np+dp16)
	rows := u32to16((sc.bf[nq+np:]))
	return sc.bf[:nq], sc.bf[nq : nq+np], rows[:dp16], rows[dp16 : 2*dp16]
}

// packHeadBF16 is packHead for the bf16 path: keys into 16-key pair panels of attnPairs(d) steps
// (panel j at j·16·attnPairs(d) slots of slot's region of sc.kp), values into pair panels per
// key tile: tile t (keys attnBK·t …) at t·(attnBK/2)·dp16 slots of sc.vp's region, its kt pair
// steps (attnBK/2, or fewer for a last short tile) as dp16/16 panels of kt·16 slots.
func (j *attnJob) packHeadBF16(sc *attnScratch, b, h, slot, dp, nkPad int) {
	p := j.p
	d, w, dh := p.HeadDim, p.Heads*p.HeadDim, attnPairs(p.HeadDim)
	dp16 := (dp + 15) &^ 15
	_, _, r0, r1 := sc.bf16Rows(d, dp16)
	k := j.k[b*p.Nk*w+h*d:]
	v := j.v[b*p.Nk*w+h*d:]
	kp := u32s(sc.kp[slot*nkPad*d : (slot+1)*nkPad*d])
	vp := u32s(sc.vp[slot*nkPad*dp : (slot+1)*nkPad*dp])
	row := func(dst []uint16, key int, src []float32) {
		if key >= p.Nk {
			clear(dst)
			return
		}
		F32ToBF16(dst[:d], src[key*w:key*w+d])
		clear(dst[d:])
	}
	for key := 0; key < nkPad; key++ {
		row(r0, key, k)
		panel := kp[(key/attnNR)*dh*attnNR+key%attnNR:]
		for t := 0; t < dh; t++ {
			panel[t*attnNR] = uint32(r0[2*t]) | uint32(r0[2*t+1])<<16
		}
	}
	for k0 := 0; k0 < nkPad; k0 += attnBK {
		kt := min(attnBK, nkPad-k0) / 2
		tile := vp[k0/2*dp16:]
		for t := 0; t < kt; t++ {
			row(r0, k0+2*t, v)
			row(r1, k0+2*t+1, v)
			for c0 := 0; c0 < dp16; c0 += attnNR {
				dst := tile[c0*kt+t*attnNR : c0*kt+t*attnNR+attnNR]
				for x := range dst {
					dst[x] = uint32(r0[c0+x]) | uint32(r1[c0+x])<<16
				}
			}
		}
	}
}

// tileBF16 is tile for the bf16 path.
func (j *attnJob) tileBF16(sc *attnScratch, b, h, slot, q0, dp, nkPad int) {
	p := j.p
	d, w, dh := p.HeadDim, p.Heads*p.HeadDim, attnPairs(p.HeadDim)
	dp16 := (dp + 15) &^ 15
	q16, p16, _, _ := sc.bf16Rows(d, dp16)
	kp := u32s(sc.kp[slot*nkPad*d:])
	vp := u32s(sc.vp[slot*nkPad*dp:])
	asm := attnBF16Asm()
	nq := min(attnBQ, p.Nq-q0)
	rows := (nq + attnMR512 - 1) / attnMR512 * attnMR512
	qs := p.Scale * math.Log2E // the softmax uses 2^x
	qsrc := j.q[(b*p.Nq+q0)*w+h*d:]
	if useAVX2 {
		j.prefetchNext(b, h, q0, nq)
	}
	tmp := sc.o[:d]
	for i := 0; i < rows; i++ {
		qr := q16[i*dh : (i+1)*dh]
		if i >= nq {
			clear(qr)
			continue
		}
		elemScale(tmp, qsrc[i*w:i*w+d], qs)
		q := u32to16((qr))
		F32ToBF16(q[:d], tmp)
		clear(q[d:])
	}
	o, kEnd := sc.startTile(p, rows, dp, q0, nq)
	for k0 := 0; k0 < kEnd; k0 += attnBK {
		nk := min(attnBK, kEnd-k0)
		nkr := (nk + attnNR - 1) &^ (attnNR - 1)
		kt := min(attnBK, nkPad-k0) / 2 // pair steps packed for this key tile
		// Scores S = Q̃·Kᵀ for the tile's key panels, row stride attnBK.
		attnGemmBF16(asm, rows, nkr, dh, q16, dh, kp[k0*dh:], sc.s, attnBK, 0)
		if nk < nkr || p.Causal {
			attnMask(sc.s, nq, nk, nkr, q0-k0, p.Causal)
		}
		if asm {
			attnSoftmax512(&sc.s[0], nq, nkr, &sc.m[0], &sc.l[0], &o[0], dp)
		} else {
			attnSoftmax(sc.s, nq, nkr, sc.m, sc.l, o, dp)
		}
		// P in bf16, pairs of consecutive keys, attnBK/2 pairs a row; pairs the key tile has
		// packed beyond the scores computed (a causal tile's end) are zero.
		F32ToBF16(u32to16((p16))[:rows*attnBK], sc.s[:rows*attnBK])
		if nkr/2 < kt {
			for i := 0; i < rows; i++ {
				clear(p16[i*attnBK/2+nkr/2 : i*attnBK/2+kt])
			}
		}
		attnGemmBF16(asm, rows, dp, kt, p16, attnBK/2, vp[k0/2*dp16:], o, dp, 1)
	}
	dst := j.out[(b*p.Nq+q0)*w+h*d:]
	for i := 0; i < nq; i++ {
		elemScale(dst[i*w:i*w+d], o[i*dp:i*dp+d], 1/sc.l[i])
	}
}

// attnGemmBF16 sets c = a·b + beta·c (beta 0 or 1) for rows (a multiple of 12) × cols (a
// multiple of 8) of c, row stride ldc: a is bf16 pair rows (row stride lda slots, kc pair steps
// each), b pair panels of 16 columns × kc steps one after the other. asm selects the AVX512-BF16
// kernels (12×32 blocks, then 6×16 and 6×8 for the last columns), else the plain-Go twin.
func attnGemmBF16(asm bool, rows, cols, kc int, a []uint32, lda int, b []uint32, c []float32, ldc int, beta float32) {
	_ = a[(rows-1)*lda+kc-1]
	_ = b[((cols+15)/16)*16*kc-1]
	_ = c[(rows-1)*ldc+cols-1]
	if !asm {
		attnGemmBF16Generic(rows, cols, kc, a, lda, b, c, ldc, beta)
		return
	}
	for r := 0; r < rows; r += attnMR512 {
		attnGemmBF16Rows(kc, a[r*lda:], lda, b, c[r*ldc:], ldc, cols, beta)
	}
}

// attnGemmBF16Generic is the plain-Go twin of attnGemmBF16: each element sums its kc pair
// products in order, as VDPBF16PS does, then adds beta·c.
func attnGemmBF16Generic(rows, cols, kc int, a []uint32, lda int, b []uint32, c []float32, ldc int, beta float32) {
	for r := 0; r < rows; r++ {
		ar := a[r*lda : r*lda+kc]
		for x := 0; x < cols; x++ {
			bp := b[(x/16)*16*kc+x%16:]
			var acc float32
			for t, av := range ar {
				acc = bf16Dot(acc, av, bp[t*16])
			}
			if beta != 0 {
				acc += beta * c[r*ldc+x]
			}
			c[r*ldc+x] = acc
		}
	}
}

// u32to16 views 32-bit slots as twice as many 16-bit values.
func u32to16(u []uint32) []uint16 {
	if len(u) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&u[0])), 2*len(u))
}
