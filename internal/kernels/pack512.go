package kernels

// packBConv512 is packBConv for the AVX-512 path (the same panels, bit for bit): a panel row
// clipped by the left or right padding is copied four floats at a time rather than one by one,
// which made the clipped rows of 3×3 convolutions cost as much as all the others (the packers
// are ~12% of the VAE decoder once the 12×32 kernels run).
func packBConv512(dst []float32, s *sgemmSrc, p0, kc, j0, nc int) {
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

// packClipped sets the panel row dp to row[ix+t] for lo ≤ t < hi and to 0 elsewhere.
func packClipped(dp *[sgemmNR]float32, row []float32, ix, lo, hi int) {
	lo = min(lo, sgemmNR) // padding wider than the panel
	hi = max(hi, lo)
	for t := 0; t < lo; t++ {
		dp[t] = 0
	}
	if lo < hi {
		out, src := dp[lo:hi], row[ix+lo:ix+hi]
		q := 0
		for ; q+4 <= len(out); q += 4 {
			*(*[4]float32)(out[q:]) = *(*[4]float32)(src[q:])
		}
		for ; q < len(out); q++ {
			out[q] = src[q]
		}
	}
	for t := hi; t < sgemmNR; t++ {
		dp[t] = 0
	}
}
