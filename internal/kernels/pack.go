package kernels

// packA packs rows [i0, i0+mc) and columns [p0, p0+kc) of A into micro-panels of sgemmMR rows:
// panel q holds dst[q·MR·kc + p·MR + r] = A[i0+q·MR+r][p0+p], zero beyond the matrix edge.
// tmp (sgemmMR·kc floats) holds rows widened from half precision.
func packA(dst, tmp []float32, s *sgemmSrc, i0, mc, p0, kc int) {
	if s.pairs {
		packAPairs(dst, tmp, s, i0, mc, p0, kc)
		return
	}
	if s.a16 != nil {
		s.a16.block(dst, i0, mc, p0, kc)
		return
	}
	for ir := 0; ir < mc; ir += sgemmMR {
		rows := min(sgemmMR, mc-ir)
		d := dst[ir*kc : ir*kc+sgemmMR*kc]
		if s.trans { // A stored k×m: each k step is a contiguous run of rows
			for p := 0; p < kc; p++ {
				src := s.data[(p0+p)*s.ld+i0+ir:]
				dp := d[p*sgemmMR : p*sgemmMR+sgemmMR]
				if rows == sgemmMR {
					copy(dp, src[:sgemmMR])
				} else {
					copy(dp, src[:rows])
					clear(dp[rows:])
				}
			}
			continue
		}
		var rs [sgemmMR][]float32
		for r := 0; r < rows; r++ {
			var t []float32 // tmp only for half rows: a float32 source needs none
			if s.half != nil {
				t = tmp[r*kc : (r+1)*kc]
			}
			rs[r] = packRow(s, i0+ir+r, p0, kc, t)
		}
		if rows == sgemmMR { // one pass, sequential writes
			r0, r1, r2, r3, r4, r5 := rs[0][:kc], rs[1][:kc], rs[2][:kc], rs[3][:kc], rs[4][:kc], rs[5][:kc]
			for p := range r0 {
				dp := d[p*sgemmMR : p*sgemmMR+sgemmMR : p*sgemmMR+sgemmMR]
				dp[0], dp[1], dp[2], dp[3], dp[4], dp[5] = r0[p], r1[p], r2[p], r3[p], r4[p], r5[p]
			}
			continue
		}
		for r := 0; r < rows; r++ {
			for p, v := range rs[r] {
				d[p*sgemmMR+r] = v
			}
		}
		for r := rows; r < sgemmMR; r++ {
			for p := 0; p < kc; p++ {
				d[p*sgemmMR+r] = 0
			}
		}
	}
}

// packB packs rows [p0, p0+kc) and columns [j0, j0+nc) of B into micro-panels of sgemmNR columns:
// panel q holds dst[q·NR·kc + p·NR + x] = B[p0+p][j0+q·NR+x], zero beyond the matrix edge.
// tmp (kc floats, or 16·kc for the fast transposed path) holds rows widened from half precision.
func packB(dst, tmp []float32, s *sgemmSrc, p0, kc, j0, nc int) {
	if s.pairs {
		packBPairs(dst, tmp, s, p0, kc, j0, nc)
		return
	}
	if s.conv {
		packBConv(dst, s, p0, kc, j0, nc)
		return
	}
	for jr := 0; jr < nc; jr += sgemmNR {
		cols := min(sgemmNR, nc-jr)
		d := dst[jr*kc : jr*kc+sgemmNR*kc]
		if !s.trans {
			col := s.batchBase(j0 + jr)
			if cols == sgemmNR && packBN16(d, s.data[p0*s.ld+col:], s.ld, kc) {
				continue
			}
			for p := 0; p < kc; p++ {
				src := s.data[(p0+p)*s.ld+col:]
				dp := d[p*sgemmNR : p*sgemmNR+sgemmNR]
				if cols == sgemmNR {
					copy(dp, src[:sgemmNR])
				} else {
					copy(dp, src[:cols])
					clear(dp[cols:])
				}
			}
			continue
		}
		// B stored n×k: each column of op(B) is a contiguous row.
		if cols == sgemmNR { // sixteen rows at a time through the assembly transposer
			base := (j0+jr)*s.ld + p0
			if s.half == nil && packBT16(d, s.data[base:], s.ld, kc) {
				continue
			}
			if s.half != nil && kc <= len(tmp)/sgemmNR && useAVX2 {
				for x := 0; x < sgemmNR; x++ {
					packRow(s, j0+jr+x, p0, kc, tmp[x*kc:(x+1)*kc])
				}
				if packBT16(d, tmp, kc, kc) {
					continue
				}
			}
		}
		for x := 0; x < cols; x++ {
			row := packRow(s, j0+jr+x, p0, kc, tmp[:kc])
			for p, v := range row {
				d[p*sgemmNR+x] = v
			}
		}
		for x := cols; x < sgemmNR; x++ {
			for p := 0; p < kc; p++ {
				d[p*sgemmNR+x] = 0
			}
		}
	}
}

// batchBase returns where column j of a batched dense B starts in s.data: image j/batchCols at
// image·batchStride (columns are contiguous within an image).
func (s *sgemmSrc) batchBase(j int) int {
	if s.batchCols == 0 {
		return j
	}
	img := j / s.batchCols
	return img*s.batchStride + j - img*s.batchCols
}

// packRow returns the kc values of row i of a stored (row-major) operand from column p0 on: a
// view of the float32 data, or the half-precision row widened into tmp.
func packRow(s *sgemmSrc, i, p0, kc int, tmp []float32) []float32 {
	off := i*s.ld + p0
	if s.brain {
		BF16ToF32(tmp[:kc], s.half[off:off+kc])
		return tmp[:kc]
	}
	if s.half != nil {
		F16ToF32(tmp[:kc], s.half[off:off+kc])
		return tmp[:kc]
	}
	return s.data[off : off+kc]
}

// packBConv packs a block of the implicit im2col matrix of one image: row p = (c·KH + kh)·KW + kw,
// column j = oy·OW + ox, value x[c][oy·SH+kh−PH][ox·SW+kw−PW] or 0 in the padding. With a batch
// the columns of the images follow each other (a panel never straddles two images).
func packBConv(dst []float32, s *sgemmSrc, p0, kc, j0, nc int) {
	cp := &s.cp
	ow := s.ow
	hw := cp.H * cp.W
	c0, kh0, kw0 := p0/(cp.KH*cp.KW), p0/cp.KW%cp.KH, p0%cp.KW
	for jr := 0; jr < nc; jr += sgemmNR {
		cols := min(sgemmNR, nc-jr)
		d := dst[jr*kc : jr*kc+sgemmNR*kc]
		jl, data := j0+jr, s.data
		if s.batchCols > 0 {
			img := jl / s.batchCols
			jl -= img * s.batchCols
			data = data[img*s.batchStride : (img+1)*s.batchStride]
		}
		oy, ox := jl/ow, jl%ow
		c, kh, kw := c0, kh0, kw0
		iy0, ix0 := oy*cp.StrideH-cp.PadH, ox*cp.StrideW-cp.PadW
		// Common case: a panel on one output row; most of its rows are 16 inputs in one input row
		// (contiguous for stride 1).
		fast := cols == sgemmNR && ox+sgemmNR <= ow
		sw, span := cp.StrideW, (sgemmNR-1)*cp.StrideW+1
		for p := 0; p < kc; p++ {
			dp := (*[sgemmNR]float32)(d[p*sgemmNR:])
			iy, ix := iy0+kh, ix0+kw
			if fast && sw != 1 && uint(iy) < uint(cp.H) && ix >= 0 && ix+span <= cp.W {
				src := data[c*hw+iy*cp.W+ix : c*hw+iy*cp.W+ix+span]
				for t := range dp {
					dp[t] = src[t*sw]
				}
			} else if fast && sw == 1 && uint(iy) < uint(cp.H) && ix >= 0 && ix+sgemmNR <= cp.W {
				src := (*[sgemmNR]float32)(data[c*hw+iy*cp.W+ix:])
				// Four 16-byte moves: a 64-byte array copy would call memmove.
				*(*[4]float32)(dp[0:]) = *(*[4]float32)(src[0:])
				*(*[4]float32)(dp[4:]) = *(*[4]float32)(src[4:])
				*(*[4]float32)(dp[8:]) = *(*[4]float32)(src[8:])
				*(*[4]float32)(dp[12:]) = *(*[4]float32)(src[12:])
			} else if fast && sw == 1 && uint(iy) < uint(cp.H) {
				// Clipped by the left or right padding: copy the valid part, zero the rest.
				lo, hi := max(0, -ix), min(sgemmNR, cp.W-ix)
				row := data[c*hw+iy*cp.W : c*hw+(iy+1)*cp.W]
				packClipped(dp, row, ix, lo, hi)
			} else {
				packBConvRow(dp[:], data[c*hw:(c+1)*hw], cp, ow, oy, ox, cols, kh, kw)
			}
			if kw++; kw == cp.KW {
				kw = 0
				if kh++; kh == cp.KH {
					kh = 0
					c++
				}
			}
		}
	}
}

// packBConvRow packs one row (kernel tap c, kh, kw) of an im2col micro-panel whose first column is
// output pixel (oy, ox), walking the columns in runs that stay on one output row.
func packBConvRow(dp, img []float32, cp *ConvParams, ow, oy, ox, cols, kh, kw int) {
	x := 0
	for x < cols {
		run := min(cols-x, ow-ox)
		out := dp[x : x+run]
		iy := oy*cp.StrideH + kh - cp.PadH
		if iy < 0 || iy >= cp.H {
			clear(out)
		} else {
			row := img[iy*cp.W : (iy+1)*cp.W]
			ix := ox*cp.StrideW + kw - cp.PadW
			if cp.StrideW == 1 {
				lo, hi := max(0, -ix), min(run, cp.W-ix) // valid part of the run
				if lo >= hi {
					clear(out)
				} else {
					clear(out[:lo])
					copy(out[lo:hi], row[ix+lo:ix+hi])
					clear(out[hi:])
				}
			} else {
				for t := range out {
					if ix >= 0 && ix < cp.W {
						out[t] = row[ix]
					} else {
						out[t] = 0
					}
					ix += cp.StrideW
				}
			}
		}
		x += run
		ox = 0
		oy++
	}
	clear(dp[cols:])
}
