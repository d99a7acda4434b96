package kernels

import "unsafe"

// Packing into bf16 pair panels. The panels have the float32 layout of packA and packB in 32-bit
// slots, with kc counting pairs of k steps: slot (p, r) of an A panel holds row r's bf16 values
// at k = 2p (low half) and 2p+1 (high half); likewise slot (p, x) of a B panel for column x. The
// operand's steps beyond pairK (an odd last step's partner) are zero.

// u32s views float32 slots as the 32-bit pairs they hold.
func u32s(f []float32) []uint32 {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*uint32)(unsafe.Pointer(&f[0])), len(f))
}

// u16s views float32 scratch as twice as many 16-bit values.
func u16s(f []float32) []uint16 {
	if len(f) == 0 {
		return nil
	}
	return unsafe.Slice((*uint16)(unsafe.Pointer(&f[0])), 2*len(f))
}

// bf16Pair joins the bf16 values of steps 2p and 2p+1 of row (zero beyond its end).
func bf16Pair(row []uint16, p int) uint32 {
	if 2*p+1 < len(row) {
		return uint32(row[2*p]) | uint32(row[2*p+1])<<16
	}
	if 2*p < len(row) {
		return uint32(row[2*p])
	}
	return 0
}

// packAPairs is packA for pair panels: rows [i0, i0+mc), pair steps [p0, p0+kc). A is bf16
// weights (brain) or float32 data rounded to bf16 here, row-major (not transposed). tmp holds
// the rounded rows.
func packAPairs(dst, tmp []float32, s *sgemmSrc, i0, mc, p0, kc int) {
	if s.paired {
		packAPrepacked(dst, s, i0, mc, p0, kc)
		return
	}
	if s.pairTaps > 0 {
		packAPairsTaps(dst, s, i0, mc, p0, kc)
		return
	}
	q0 := 2 * p0
	qn := min(2*kc, s.pairK-q0)
	d32, t16 := u32s(dst), u16s(tmp)
	for ir := 0; ir < mc; ir += sgemmMR {
		rows := min(sgemmMR, mc-ir)
		d := d32[ir*kc : ir*kc+sgemmMR*kc]
		var rs [sgemmMR][]uint16
		for r := 0; r < rows; r++ {
			off := (i0+ir+r)*s.ld + q0
			if s.brain {
				rs[r] = s.half[off : off+qn]
			} else {
				rs[r] = t16[r*qn : (r+1)*qn]
				F32ToBF16(rs[r], s.data[off:off+qn])
			}
		}
		if rows == sgemmMR && qn == 2*kc { // one pass, sequential writes
			r0, r1, r2, r3, r4, r5 := rs[0][:qn], rs[1][:qn], rs[2][:qn], rs[3][:qn], rs[4][:qn], rs[5][:qn]
			for p := 0; p < kc; p++ {
				q := 2 * p
				dp := d[p*sgemmMR : p*sgemmMR+sgemmMR : p*sgemmMR+sgemmMR]
				dp[0] = uint32(r0[q]) | uint32(r0[q+1])<<16
				dp[1] = uint32(r1[q]) | uint32(r1[q+1])<<16
				dp[2] = uint32(r2[q]) | uint32(r2[q+1])<<16
				dp[3] = uint32(r3[q]) | uint32(r3[q+1])<<16
				dp[4] = uint32(r4[q]) | uint32(r4[q+1])<<16
				dp[5] = uint32(r5[q]) | uint32(r5[q+1])<<16
			}
			continue
		}
		for r := 0; r < sgemmMR; r++ {
			for p := 0; p < kc; p++ {
				d[p*sgemmMR+r] = bf16Pair(rs[r], p) // rs[r] is nil for rows past the edge
			}
		}
	}
}

// packBPairs is packB for pair panels: pair steps [p0, p0+kc), columns [j0, j0+nc). B is bf16
// weights stored n×k (brain, transposed: each column's pairs are contiguous), or float32 data
// (dense or a convolution's implicit im2col), packed as float32 two rows per pair and rounded.
func packBPairs(dst, tmp []float32, s *sgemmSrc, p0, kc, j0, nc int) {
	if s.paired { // pairs already: the float32 packer moves them as 32-bit values
		plain := *s
		plain.pairs, plain.paired = false, false
		packB(dst, tmp, &plain, p0, kc, j0, nc)
		return
	}
	q0 := 2 * p0
	qn := min(2*kc, s.pairK-q0)
	plain := *s
	plain.pairs = false
	for jr := 0; jr < nc; jr += sgemmNR {
		cols := min(sgemmNR, nc-jr)
		d := dst[jr*kc : jr*kc+sgemmNR*kc]
		if s.brain {
			packBPairsT(d, s, q0, qn, kc, j0+jr, cols)
			continue
		}
		f := tmp[:2*kc*sgemmNR]
		packB(f, tmp[2*kc*sgemmNR:], &plain, q0, qn, j0+jr, cols)
		clear(f[qn*sgemmNR:])
		bf16PairRowsAny(u32s(d), f, kc)
	}
}

// packBPairsT packs one 16-column pair panel d (kc pair steps) from bf16 rows j..j+cols−1 of a
// transposed B, steps [q0, q0+qn): sixteen rows at a time through the float32 transposer (a pair
// is a 32-bit value) when the rows hold whole, 4-byte aligned pairs.
func packBPairsT(d []float32, s *sgemmSrc, q0, qn, kc, j, cols int) {
	off := j*s.ld + q0
	if cols == sgemmNR && qn == 2*kc && s.ld%2 == 0 && uintptr(unsafe.Pointer(&s.half[off]))%4 == 0 {
		src := unsafe.Slice((*float32)(unsafe.Pointer(&s.half[off])), (len(s.half)-off)/2)
		if packBT16(d, src, s.ld/2, kc) {
			return
		}
	}
	d32 := u32s(d)
	for x := 0; x < sgemmNR; x++ {
		var row []uint16
		if x < cols {
			row = s.half[off+x*s.ld : off+x*s.ld+qn]
		}
		for p := 0; p < kc; p++ {
			d32[p*sgemmNR+x] = bf16Pair(row, p)
		}
	}
}

// bf16PairRowsAny rounds and pairs n steps of two 16-float rows (see bf16PairRows), in
// assembly when it may run.
func bf16PairRowsAny(dst []uint32, src []float32, n int) {
	if n == 0 {
		return
	}
	_ = src[32*n-1]
	_ = dst[16*n-1]
	if useBF16 && !bf16Twin {
		bf16PairRows(&dst[0], &src[0], n)
		return
	}
	for p := 0; p < n; p++ {
		even, odd := src[32*p:32*p+16], src[32*p+16:32*p+32]
		out := dst[16*p : 16*p+16]
		for x := range out {
			out[x] = uint32(bf16FromF32(even[x])) | uint32(bf16FromF32(odd[x]))<<16
		}
	}
}

// packAPairsTaps is packAPairs for convolution weights paired by channel (s.pairTaps > 0): slot
// (p, r) of a panel holds row r's weights of channels 2c and 2c+1 at tap t, p0+p = c·taps + t.
func packAPairsTaps(dst []float32, s *sgemmSrc, i0, mc, p0, kc int) {
	taps := s.pairTaps
	d32 := u32s(dst)
	for ir := 0; ir < mc; ir += sgemmMR {
		d := d32[ir*kc : ir*kc+sgemmMR*kc]
		rows := min(sgemmMR, mc-ir)
		var rs [sgemmMR][]uint16
		for r := range rs {
			rs[r] = s.half[(i0+ir+min(r, rows-1))*s.ld:][:s.ld] // rows past the edge: cleared below
		}
		r0, r1, r2, r3, r4, r5 := rs[0], rs[1], rs[2], rs[3], rs[4], rs[5]
		c, t := p0/taps, p0%taps
		for p := 0; p < kc; p++ {
			e := 2*c*taps + t
			o := e + taps
			dp := d[p*sgemmMR : p*sgemmMR+sgemmMR : p*sgemmMR+sgemmMR]
			dp[0] = uint32(r0[e]) | uint32(r0[o])<<16
			dp[1] = uint32(r1[e]) | uint32(r1[o])<<16
			dp[2] = uint32(r2[e]) | uint32(r2[o])<<16
			dp[3] = uint32(r3[e]) | uint32(r3[o])<<16
			dp[4] = uint32(r4[e]) | uint32(r4[o])<<16
			dp[5] = uint32(r5[e]) | uint32(r5[o])<<16
			if t++; t == taps {
				t, c = 0, c+1
			}
		}
		for r := rows; r < sgemmMR; r++ {
			for p := 0; p < kc; p++ {
				d[p*sgemmMR+r] = 0
			}
		}
	}
}
