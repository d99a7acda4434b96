package kernels

import "math"

// GroupNorm normalises x (NCHW: n×c×hw) over groups of c/groups consecutive channels and writes
// y = (x−mean)/sqrt(var+eps)·gamma[ch] + beta[ch], followed by SiLU when silu is set (the
// GroupNorm→SiLU pair of every ResNet block). Statistics are the biased mean and variance of each
// (sample, group), accumulated in float64 in two passes. gamma and beta have c entries; nil means
// 1 and 0. y may alias x.
func GroupNorm(x, y []float32, n, c, hw, groups int, eps float32, gamma, beta []float32, silu bool) {
	if n*c*hw == 0 {
		return
	}
	_ = x[n*c*hw-1]
	_ = y[n*c*hw-1]
	j := elemStart(elemOpGroupNorm)
	j.a, j.dst, j.b, j.c, j.s = x, y, gamma, beta, eps
	j.n1, j.n2, j.n3 = c/groups, hw, groups
	if silu {
		j.n4 = 1
	}
	j.do(n*groups, max(1, (1<<14)/(j.n1*hw)))
}

// normGroups normalises (sample, group) blocks [lo, hi) of a GroupNorm of groups groups of cg
// channels of hw values.
func normGroups(x, y []float32, lo, hi, cg, hw, groups int, eps float32, gamma, beta []float32, silu bool) {
	size := cg * hw
	for t := lo; t < hi; t++ {
		off := t * size
		normGroup(x[off:off+size], y[off:off+size], (t%groups)*cg, cg, hw, eps, gamma, beta, silu)
	}
}

// LayerNorm normalises each of rows rows of x (rows×cols) over its cols values and writes
// y = (x−mean)/sqrt(var+eps)·gamma + beta (biased variance, as torch.nn.LayerNorm). gamma and beta
// have cols entries; nil means 1 and 0. y may alias x.
func LayerNorm(x, y []float32, rows, cols int, eps float32, gamma, beta []float32) {
	if rows*cols == 0 {
		return
	}
	_ = x[rows*cols-1]
	_ = y[rows*cols-1]
	j := elemStart(elemOpLayerNorm)
	j.a, j.dst, j.b, j.c, j.n1, j.s = x, y, gamma, beta, cols, eps
	j.do(rows, (1<<14+cols-1)/cols)
}

// normRows normalises LayerNorm rows [lo, hi).
func normRows(x, y []float32, lo, hi, cols int, eps float32, gamma, beta []float32) {
	for r := lo; r < hi; r++ {
		xr, yr := x[r*cols:(r+1)*cols], y[r*cols:(r+1)*cols]
		mean, rstd := normMoments(xr, eps)
		normRow(xr, yr, mean, rstd, gamma, beta)
	}
}

// normGroup normalises one (sample, group) block of cg channels of hw values starting at channel ch0.
func normGroup(x, y []float32, ch0, cg, hw int, eps float32, gamma, beta []float32, silu bool) {
	mean, rstd := normMoments(x, eps)
	for ci := 0; ci < cg; ci++ {
		s, b := normCoef(rstd, ch0+ci, gamma, beta)
		normAffine(x[ci*hw:(ci+1)*hw], y[ci*hw:(ci+1)*hw], float32(mean), s, b, silu)
	}
}

// normCoef is channel ch's scale and shift in a GroupNorm whose group has 1/sqrt(var+eps) rstd.
func normCoef(rstd float64, ch int, gamma, beta []float32) (s, b float32) {
	s = float32(rstd)
	if gamma != nil {
		s = float32(rstd * float64(gamma[ch]))
	}
	if beta != nil {
		b = beta[ch]
	}
	return s, b
}

// GroupNormCoef computes GroupNorm's per-plane constants for x (n×c×hw in groups groups, gamma
// and beta as in GroupNorm): for sample i's channel ch, at i·c + ch, the mean m, scale s and
// shift b such that NormAffine(plane, y, m, s, b, silu), on all of the plane or on any runs of
// it, writes what GroupNorm writes (bit for bit where the runs' lengths are multiples of 8).
// It reads x once; m, s and b must hold n·c values.
func GroupNormCoef(x []float32, n, c, hw, groups int, eps float32, gamma, beta, m, s, b []float32) {
	if n*c*hw == 0 {
		return
	}
	_ = x[n*c*hw-1]
	_, _, _ = m[n*c-1], s[n*c-1], b[n*c-1]
	cg := c / groups
	parallelFor(n*groups, max(1, (1<<14)/(cg*hw)), func(lo, hi int) {
		for t := lo; t < hi; t++ {
			mean, rstd := normMoments(x[t*cg*hw:(t+1)*cg*hw], eps)
			ch0 := (t % groups) * cg
			for ci := 0; ci < cg; ci++ {
				i := t*cg + ci
				m[i] = float32(mean)
				s[i], b[i] = normCoef(rstd, ch0+ci, gamma, beta)
			}
		}
	})
}

// NormAffine sets y = (x−m)·s + b, then SiLU if silu: GroupNorm's step on a run of one plane's
// values, with GroupNormCoef's constants.
func NormAffine(x, y []float32, m, s, b float32, silu bool) { normAffine(x, y, m, s, b, silu) }

// normMoments returns the mean of x and 1/sqrt(var+eps) for its biased variance. One pass
// accumulates, in float64, the sums of d and d² for d = x − x[0]: shifting by a sample keeps the
// cancellation in Σd²/n − (Σd/n)² small (the shift is within the data's range), and float64 has
// digits to spare for what remains.
func normMoments(x []float32, eps float32) (mean, rstd float64) {
	shift := float64(x[0])
	var s1, s2 float64
	m := 0
	if useAVX2 {
		m = len(x) &^ 7
	}
	if m > 0 {
		s1, s2 = normMomentsAVX2(&x[0], m, shift)
	}
	for _, v := range x[m:] {
		d := float64(v) - shift
		s1 += d
		s2 += d * d
	}
	n := float64(len(x))
	dm := s1 / n
	v := max(s2/n-dm*dm, 0)
	return shift + dm, 1 / math.Sqrt(v+float64(eps))
}

// normAffine sets y = (x−m)·s + b, then SiLU if silu. Subtracting the mean first (rather than
// folding it into b) keeps the result exact when the spread is tiny next to the mean.
func normAffine(x, y []float32, m, s, b float32, silu bool) {
	y = y[:len(x)]
	if useAVX2 && len(x) >= 8 {
		n := len(x) &^ 7
		normAffineAVX2(&x[0], &y[0], n, m, s, b, silu)
		x, y = x[n:], y[n:]
	}
	if silu {
		for i, v := range x {
			y[i] = actSiLUGo((v-m)*s + b)
		}
		return
	}
	for i, v := range x {
		y[i] = (v-m)*s + b
	}
}

// normRow sets y = (x−mean)·rstd·gamma + beta for one LayerNorm row.
func normRow(x, y []float32, mean, rstd float64, gamma, beta []float32) {
	y = y[:len(x)]
	m, s := float32(mean), float32(rstd)
	if useAVX2 && gamma != nil && beta != nil && len(x) >= 8 {
		n := len(x) &^ 7
		normRowAVX2(&x[0], &y[0], &gamma[0], &beta[0], n, m, s)
		x, y, gamma, beta = x[n:], y[n:], gamma[n:], beta[n:]
	}
	for i, v := range x {
		t := (v - m) * s
		if gamma != nil {
			t *= gamma[i]
		}
		if beta != nil {
			t += beta[i]
		}
		y[i] = t
	}
}
