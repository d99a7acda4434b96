package kernels

import (
	"math"
)

// The column layout of the attention tiles, used by the AVX-512 kernels (float32 and bf16), the
// AVX2 ones (float32) and the plain-Go path. A tile's attnBQ queries lie across the vector lanes
// (three zmm of 16, six ymm of 8), and the head dimension and the keys are broadcasts: the scaled
// queries as Q̃^T (HeadDim rows of attnBQ), the scores and probabilities as S^T (a row per key),
// the output accumulator as O^T (a row per value column). So no lane is wasted whatever the head
// dimension (40 = 2.5 zmm with the queries down the rows instead), and the online softmax's maximum and sum per query are lane-wise maxima and sums
// down the key rows instead of horizontal reductions. Without AVX-512 the AVX2 kernels
// (attention_avx2col_amd64.go) run the same layout in ymm registers.
//
// Packed per head (packHeadCol), in 32-bit slots:
//   - keys in panels of attnKP: panel j holds, per step t, the values of keys 8j…8j+7 (a step is
//     one head-dim value, or with bf16 a pair of consecutive ones);
//   - values as rows of dp = HeadDim rounded up to 8 (zero padded), one per key, or with bf16 one
//     per key pair, each slot holding the pair (key 2j low, key 2j+1 high) of a column.
//
// The online softmax keeps a running maximum m per query that moves only when a key tile's
// maximum exceeds it by more than attnMaxSlack: probabilities are 2^(s − m) ≤ 2^attnMaxSlack, and
// since the sum and the accumulator use the same m the result is exact; most tiles then need no
// rescaling of O^T.
const (
	attnKP       = 8   // keys per key panel; also the O^T rows per pass of attnPVT512
	attnKBC      = 128 // most keys per key tile (attnKeyTile)
	attnMaxSlack = 8   // asmgen/attention.go holds the same
	// attnMasked is a masked score (padding keys, causal mask): finite so that s − m never is
	// NaN, and so negative that 2^(s − m) is exactly 0. Also m's value before the first tile.
	attnMasked = -1e30
)

// attnExp2Coef are the coefficients c0…c5 of 2^f ≈ Σ c_i·f^i on [0, 1) (minimax for the relative
// error: 1.5e-7 with float32 Horner steps); asmgen/attention.go holds the same.
var attnExp2Coef = [6]float32{0.99999994, 0.6931531, 0.24015361, 0.055826318, 0.00898934, 0.0018775767}

// attnExp2 is the plain-Go twin of the kernels' 2^x: f = x − ⌊x⌋, a degree-5 polynomial on f
// (fused multiply-adds), scaled by 2^⌊x⌋ with one rounding (VSCALEFPS). x < −126 gives 0 (no
// subnormal results, and a masked score's exactly 0).
func attnExp2(x float32) float32 {
	if x < -126 {
		return 0
	}
	n := float32(math.Floor(float64(x)))
	f := x - n
	c := &attnExp2Coef
	p := fma32(c[5], f, c[4])
	p = fma32(p, f, c[3])
	p = fma32(p, f, c[2])
	p = fma32(p, f, c[1])
	p = fma32(p, f, c[0])
	return float32(math.Ldexp(float64(p), int(n)))
}

// fma32 is a·b + c rounded once to float32 (the product of two float32 values is exact in
// float64, and the sum is rounded to float64 first, a double rounding that can differ from
// VFMADD's single one in the last bit, rarely).
func fma32(a, b, c float32) float32 { return float32(math.FMA(float64(a), float64(b), float64(c))) }

// attnKeyTile is the keys per key tile for padded head dimension dp: up to attnKBC, fewer for wide
// heads, so that a tile's values (and probabilities) stay in the L1 cache through the eight-column
// passes of attnPVT512 (about 32 KiB of float32 values).
func attnKeyTile(dp int) int { return min(attnKBC, max(4*attnKP, 8192/dp&^(attnKP-1))) }

// attnColKernels are a product and softmax kernel set of the column layout, for some number of a
// tile's lanes (attnAVX2Col).
type attnColKernels struct {
	qkt     func(np, d int, q, k, s *float32)
	pvt     func(nk, nc, ldv int, p, v, o *float32)
	softmax func(s *float32, n int, m, l, o *float32, nc int)
}

// packHeadCol packs head h of batch b's keys and values into slot of sc in the column layout
// (see above), float32 or bf16 as j.bf16 says.
func (j *attnJob) packHeadCol(sc *attnScratch, b, h, slot, dp, nkPad int) {
	p := j.p
	d, w := p.HeadDim, p.Heads*p.HeadDim
	k := j.k[b*p.Nk*w+h*d:]
	v := j.v[b*p.Nk*w+h*d:]
	kp := sc.kp[slot*nkPad*d : (slot+1)*nkPad*d]
	vp := sc.vp[slot*nkPad*dp : (slot+1)*nkPad*dp]
	if !j.bf16 {
		for key := 0; key < nkPad; key++ {
			panel := kp[(key/attnKP)*d*attnKP+key%attnKP:]
			vrow := vp[key*dp : (key+1)*dp]
			if key >= p.Nk {
				for t := 0; t < d; t++ {
					panel[t*attnKP] = 0
				}
				clear(vrow)
				continue
			}
			for t, x := range k[key*w : key*w+d] {
				panel[t*attnKP] = x
			}
			copy(vrow, v[key*w:key*w+d])
			clear(vrow[d:])
		}
		return
	}
	dh := attnPairs(d)
	kp32, vp32 := u32s(kp), u32s(vp)
	r := sc.bf16Row(2 * dp)
	r0, r1 := r[:dp], r[dp:]
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
		panel := kp32[(key/attnKP)*dh*attnKP+key%attnKP:]
		for t := 0; t < dh; t++ {
			panel[t*attnKP] = uint32(r0[2*t]) | uint32(r0[2*t+1])<<16
		}
	}
	for key := 0; key < nkPad; key += 2 {
		row(r0, key, v)
		row(r1, key+1, v)
		dst := vp32[key/2*dp : key/2*dp+dp]
		for c := range dst {
			dst[c] = uint32(r0[c]) | uint32(r1[c])<<16
		}
	}
}

// bf16Row returns n bf16 values of scratch (sc.bf's end, after the query and probability tiles).
func (sc *attnScratch) bf16Row(n int) []uint16 {
	off := attnBQ * attnKBC / 2
	sc.bf = attnGrowU32(sc.bf, off+(n+1)/2)
	return u32to16(sc.bf[off:])[:n]
}

// tileCol is tile in the column layout: the outputs of queries q0 … q0+attnBQ−1 (clipped to Nq)
// of head h of batch b, whose keys and values are packed in slot of sc.
func (j *attnJob) tileCol(sc *attnScratch, b, h, slot, q0, dp, nkPad int) {
	p := j.p
	d, w := p.HeadDim, p.Heads*p.HeadDim
	nq := min(attnBQ, p.Nq-q0)
	// asm: the AVX-512 kernels; avx2: the AVX2 ones (float32 only), else the plain-Go twins.
	asm := useAVX2 && useAVX512
	if j.bf16 {
		asm = attnBF16Asm()
	}
	avx2 := useAVX2 && !useAVX512 && !j.bf16
	ak := &attnAVX2Col[(nq+7)/8] // the AVX2 kernels for the tile's lanes rounded up to 8
	if useAVX2 {
		j.prefetchNext(b, h, q0, nq)
	}
	// Q̃^T: the queries scaled by Scale·log2(e) (the softmax uses 2^x), padding lanes zero.
	qs := p.Scale * math.Log2E
	qsrc := j.q[(b*p.Nq+q0)*w+h*d:]
	steps := d // Q̃^T rows (head-dim values, or bf16 pairs of them)
	qt := sc.qt[:d*attnBQ]
	if j.bf16 {
		steps = attnPairs(d)
	}
	_ = qsrc[(nq-1)*w+d-1]
	switch {
	case asm && j.bf16:
		attnLoadQT512BF16(&qsrc[0], w, nq, d, qs, &u32s(qt)[0])
	case asm:
		attnLoadQT512(&qsrc[0], w, nq, d, qs, &qt[0])
	case avx2:
		attnLoadQTAVX2(&qsrc[0], w, nq, d, qs, &qt[0])
	case j.bf16:
		attnLoadQTBF16Go(qsrc, w, nq, d, qs, u32s(qt))
	default:
		attnLoadQTGo(qsrc, w, nq, d, qs, qt)
	}
	o := sc.o[:dp*attnBQ]
	clear(o)
	m, l := sc.m[:attnBQ], sc.l[:attnBQ]
	for i := range m {
		m[i], l[i] = attnMasked, 0
	}
	kEnd := p.Nk
	if p.Causal {
		kEnd = min(p.Nk, q0+nq)
	}
	kp, vp := sc.kp[slot*nkPad*d:], sc.vp[slot*nkPad*dp:]
	s := sc.s[:attnKBC*attnBQ]
	var pt []uint32 // bf16 P^T, key pairs
	if j.bf16 {
		sc.bf = attnGrowU32(sc.bf, attnBQ*attnKBC/2)
		pt = sc.bf[:attnBQ*attnKBC/2]
	}
	kbc := attnKeyTile(dp)
	for k0 := 0; k0 < kEnd; k0 += kbc {
		nk := min(kbc, kEnd-k0)
		nkr := (nk + attnKP - 1) &^ (attnKP - 1)
		kpan := kp[k0*steps:]
		// S^T = K·Q̃^T for the tile's key panels.
		switch {
		case asm && j.bf16:
			attnQKT512BF16(nkr/attnKP, steps, &u32s(qt)[0], &u32s(kpan)[0], &s[0])
		case asm:
			attnQKT512(nkr/attnKP, steps, &qt[0], &kpan[0], &s[0])
		case avx2:
			ak.qkt(nkr/attnKP, steps, &qt[0], &kpan[0], &s[0])
		case j.bf16:
			attnQKTBF16Go(nkr/attnKP, steps, u32s(qt), u32s(kpan), s)
		default:
			attnQKTGo(nkr/attnKP, steps, qt, kpan, s)
		}
		attnMaskCol(s, nk, nkr, q0-k0, p.Causal)
		switch {
		case asm && j.bf16:
			attnSoftmaxT512BF16(&s[0], nkr, &m[0], &l[0], &o[0], dp/attnKP, &pt[0])
			attnPVT512BF16(nkr/2, dp/attnKP, dp, &pt[0], &u32s(vp)[k0/2*dp], &o[0])
		case asm:
			attnSoftmaxT512(&s[0], nkr, &m[0], &l[0], &o[0], dp/attnKP)
			attnPVT512(nkr, dp/attnKP, dp, &s[0], &vp[k0*dp], &o[0])
		case avx2:
			ak.softmax(&s[0], nkr, &m[0], &l[0], &o[0], dp/attnKP)
			ak.pvt(nkr, dp/attnKP, dp, &s[0], &vp[k0*dp], &o[0])
		case j.bf16:
			attnSoftmaxTGo(s, nkr, m, l, o, dp/attnKP, pt)
			attnPVTBF16Go(nkr/2, dp/attnKP, dp, pt, u32s(vp)[k0/2*dp:], o)
		default:
			attnSoftmaxTGo(s, nkr, m, l, o, dp/attnKP, nil)
			attnPVTGo(nkr, dp/attnKP, dp, s, vp[k0*dp:], o)
		}
	}
	dst := j.out[(b*p.Nq+q0)*w+h*d:]
	_ = dst[(nq-1)*w+d-1]
	switch {
	case useAVX2 && useAVX512:
		attnStoreOT512(&o[0], &l[0], nq, d, &dst[0], w)
	case useAVX2:
		attnStoreOTAVX2(&o[0], &l[0], nq, d, &dst[0], w) // o has dp rows
	default:
		attnStoreOTGo(o, l, nq, d, dst, w)
	}
}

// attnLoadQTGo is the plain-Go twin of attnLoadQT512: qt[48t + i] = scale·q[i·ldq + t] for t < d,
// i < nq, and 0 for the lanes nq … 47.
func attnLoadQTGo(q []float32, ldq, nq, d int, scale float32, qt []float32) {
	clear(qt[:d*attnBQ])
	for i := 0; i < nq; i++ {
		for t, x := range q[i*ldq : i*ldq+d] {
			qt[t*attnBQ+i] = x * scale
		}
	}
}

// attnLoadQTBF16Go is attnLoadQTGo rounding to bf16 pairs of consecutive head-dim values:
// qt[48t + i] holds values 2t (low) and 2t+1 (high, 0 past d) of lane i.
func attnLoadQTBF16Go(q []float32, ldq, nq, d int, scale float32, qt []uint32) {
	clear(qt[:attnPairs(d)*attnBQ])
	for i := 0; i < nq; i++ {
		for t, x := range q[i*ldq : i*ldq+d] {
			qt[t/2*attnBQ+i] |= uint32(bf16FromF32(x*scale)) << (16 * (t & 1))
		}
	}
}

// attnStoreOTGo is the plain-Go twin of attnStoreOT512: out[i·ldo + c] = o[48c + i]·(1/l[i]) for
// i < nq, c < d.
func attnStoreOTGo(o, l []float32, nq, d int, out []float32, ldo int) {
	for i := 0; i < nq; i++ {
		r := 1 / l[i]
		row := out[i*ldo : i*ldo+d]
		for c := range row {
			row[c] = o[c*attnBQ+i] * r
		}
	}
}

// attnMaskCol sets to attnMasked the score rows of padding keys (nk … nkr−1) of a tile S^T and,
// if causal, the scores of keys after their query (row c, lane i when c > i + diag). Every query
// keeps key 0 in its first key tile, so its running maximum is a real score from then on.
func attnMaskCol(s []float32, nk, nkr, diag int, causal bool) {
	for c := nk; c < nkr; c++ {
		row := s[c*attnBQ : (c+1)*attnBQ]
		for i := range row {
			row[i] = attnMasked
		}
	}
	if !causal {
		return
	}
	for c := max(0, diag+1); c < nk; c++ {
		row := s[c*attnBQ : (c+1)*attnBQ]
		for i := 0; i < min(attnBQ, c-diag); i++ {
			row[i] = attnMasked
		}
	}
}

// attnQKTGo is the plain-Go twin of attnQKT512: for np panels of attnKP keys, s[(8j+x)·48 + i] =
// Σ_{t<d} k[j·8d + 8t + x]·q[48t + i], summed in t order.
func attnQKTGo(np, d int, q, k, s []float32) {
	for j := 0; j < np; j++ {
		kp := k[j*d*attnKP : (j+1)*d*attnKP]
		for x := 0; x < attnKP; x++ {
			row := s[(j*attnKP+x)*attnBQ : (j*attnKP+x+1)*attnBQ]
			clear(row)
			for t := 0; t < d; t++ {
				kv := kp[t*attnKP+x]
				qr := q[t*attnBQ : (t+1)*attnBQ]
				for i := range row {
					row[i] = fma32(kv, qr[i], row[i])
				}
			}
		}
	}
}

// attnQKTBF16Go is attnQKTGo on bf16 pairs, each step summed as VDPBF16PS does.
func attnQKTBF16Go(np, d int, q, k []uint32, s []float32) {
	for j := 0; j < np; j++ {
		kp := k[j*d*attnKP : (j+1)*d*attnKP]
		for x := 0; x < attnKP; x++ {
			row := s[(j*attnKP+x)*attnBQ : (j*attnKP+x+1)*attnBQ]
			clear(row)
			for t := 0; t < d; t++ {
				kv := kp[t*attnKP+x]
				qr := q[t*attnBQ : (t+1)*attnBQ]
				for i := range row {
					row[i] = bf16Dot(row[i], kv, qr[i])
				}
			}
		}
	}
}

// attnPVTGo is the plain-Go twin of attnPVT512: o[c·48 + i] += Σ_{k<nk} v[k·ldv + c]·p[48k + i]
// for c < 8·nc, summed in k order.
func attnPVTGo(nk, nc, ldv int, p, v, o []float32) {
	for c := 0; c < attnKP*nc; c++ {
		row := o[c*attnBQ : (c+1)*attnBQ]
		for k := 0; k < nk; k++ {
			vv := v[k*ldv+c]
			pr := p[k*attnBQ : (k+1)*attnBQ]
			for i := range row {
				row[i] = fma32(vv, pr[i], row[i])
			}
		}
	}
}

// attnPVTBF16Go is attnPVTGo on bf16 pairs (nk pair steps), as VDPBF16PS sums them.
func attnPVTBF16Go(nk, nc, ldv int, p, v []uint32, o []float32) {
	for c := 0; c < attnKP*nc; c++ {
		row := o[c*attnBQ : (c+1)*attnBQ]
		for k := 0; k < nk; k++ {
			vv := v[k*ldv+c]
			pr := p[k*attnBQ : (k+1)*attnBQ]
			for i := range row {
				row[i] = bf16Dot(row[i], vv, pr[i])
			}
		}
	}
}

// attnSoftmaxTGo is the plain-Go twin of attnSoftmaxT512 (and, with pt, of
// attnSoftmaxT512BF16): the online-softmax step on the n key rows of a score tile s (48 lanes,
// the first key row finite in every lane). Per lane i, with M the tile's maximum: if M > m[i] +
// attnMaxSlack for any lane, those lanes take m[i] = M and every lane's l and accumulator column
// (8·nc rows of o) is scaled by α = 2^(m_old − m_new); then each score becomes p = 2^(s − m[i]),
// added to l[i] in key order (after the tile's sum is formed). With pt the probabilities are
// stored as bf16 key pairs (row j lane i: key 2j low, 2j+1 high) instead of in s.
func attnSoftmaxTGo(s []float32, n int, m, l, o []float32, nc int, pt []uint32) {
	var mx, alpha, sum [attnBQ]float32
	copy(mx[:], s[:attnBQ])
	for k := 1; k < n; k++ {
		for i, x := range s[k*attnBQ : (k+1)*attnBQ] {
			mx[i] = max(mx[i], x)
		}
	}
	moved := false
	for i := range mx {
		if mx[i] > m[i]+attnMaxSlack {
			moved = true
		}
	}
	if moved {
		for i := range alpha {
			mNew := m[i]
			if mx[i] > m[i]+attnMaxSlack {
				mNew = mx[i]
			}
			alpha[i] = attnExp2(m[i] - mNew)
			m[i] = mNew
			l[i] *= alpha[i]
		}
		for c := 0; c < attnKP*nc; c++ {
			row := o[c*attnBQ : (c+1)*attnBQ]
			for i := range row {
				row[i] *= alpha[i]
			}
		}
	}
	for k := 0; k < n; k++ {
		row := s[k*attnBQ : (k+1)*attnBQ]
		for i, x := range row {
			e := attnExp2(x + -m[i])
			row[i] = e
			sum[i] += e
		}
		if pt != nil && k&1 == 1 {
			prev, pr := s[(k-1)*attnBQ:k*attnBQ], pt[k/2*attnBQ:(k/2+1)*attnBQ]
			for i := range pr {
				pr[i] = uint32(bf16FromF32(prev[i])) | uint32(bf16FromF32(row[i]))<<16
			}
		}
	}
	for i := range sum {
		l[i] += sum[i]
	}
}
