package kernels

// packClipped sets the panel row dp to row[ix+t] for lo ≤ t < hi and to 0 elsewhere, four floats
// at a time: clipped rows of 3×3 convolutions once cost as much as all the others.
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
