package kernels

// The AVX-512 path reads the same packed panels as the AVX2 one but computes 12×32 tiles (two A
// panels by two B panels) with sgemmKernel12x32; whatever is left at the edges of a block (fewer
// than 12 rows or 32 columns) goes through the 6×16 kernels as before.

// macro512 computes, with 12×32 tiles, the columns [0, nc32) of the mc×nc block where nc32 is nc
// rounded down to a multiple of 32, and returns nc32 (0 when the job does not use AVX-512). The
// arguments are those of macro.
func (j *sgemmJob) macro512(buf *sgemmBuf, ablk, bblk []float32, mc, nc, kc, ic, jc int, beta float32, first bool) int {
	const mr2, nr2 = 2 * sgemmMR, 2 * sgemmNR
	if !j.avx512 {
		return 0
	}
	nc32 := nc / nr2 * nr2
	for jr := 0; jr < nc32; jr += nr2 {
		bp := bblk[jr*kc : jr*kc+nr2*kc]
		ir := 0
		for ; ir+mr2 <= mc; ir += mr2 {
			i, jj := ic+ir, jc+jr
			bias, mode, b := j.bias512(mr2, i, jj, first, beta)
			j.kernel512(mr2, kc, ablk[ir*kc:ir*kc+mr2*kc], bp, j.c, j.cOff(i, jj), j.cOff(i, jj+sgemmNR), j.ldc, j.alpha, b, bias, mode)
		}
		for ; ir < mc; ir += sgemmMR { // last rows: 6×32 tiles (a partial one through a scratch tile)
			mr, i, jj := min(sgemmMR, mc-ir), ic+ir, jc+jr
			ap := ablk[ir*kc : ir*kc+sgemmMR*kc]
			if mr == sgemmMR {
				bias, mode, b := j.bias512(sgemmMR, i, jj, first, beta)
				j.kernel512(sgemmMR, kc, ap, bp, j.c, j.cOff(i, jj), j.cOff(i, jj+sgemmNR), j.ldc, j.alpha, b, bias, mode)
				continue
			}
			if first && j.bias != nil {
				j.fillBias(i, jj, mr, sgemmNR)
				j.fillBias(i, jj+sgemmNR, mr, sgemmNR)
			}
			t := buf.tile512[:]
			j.kernel512(sgemmMR, kc, ap, bp, t, 0, sgemmNR, nr2, 1, 0, nil, 0)
			for h := 0; h < 2; h++ {
				off := j.cOff(i, jj+h*sgemmNR)
				for r := 0; r < mr; r++ {
					ci := j.c[off+r*j.ldc : off+r*j.ldc+sgemmNR]
					tr := t[r*nr2+h*sgemmNR : r*nr2+h*sgemmNR+sgemmNR]
					for x := range ci {
						if beta == 0 {
							ci[x] = j.alpha * tr[x]
						} else {
							ci[x] = j.alpha*tr[x] + beta*ci[x]
						}
					}
				}
			}
		}
	}
	return nc32
}

// direct512 is macroDirect's rows×32 step (1 ≤ rows ≤ 12): rows [ic, ic+rows) of A (read in place at ad, row stride lda) by
// the packed B micro-panels of bblk covering columns [0, nc32) of the block, nc32 being nc rounded down to a
// multiple of 32, which it returns.
//
// Twelve-row calls also prefetch the next part of buf.pf (the worker's next B block) into L2.
func (j *sgemmJob) direct512(buf *sgemmBuf, rows int, bblk []float32, nc, kc int, ad []float32, lda, ic, jc, pc int, beta float32) int {
	const nr2 = 2 * sgemmNR
	nc32 := nc / nr2 * nr2
	for jr := 0; jr < nc32; jr += nr2 {
		jj := jc + jr
		bias, mode, b := j.bias512(rows, ic, jj, pc == 0, beta)
		var pf []float32
		if rows == 2*sgemmMR && buf.pfAt < len(buf.pf) {
			pf = buf.pf[buf.pfAt:]
			buf.pfAt += 4 * kc // one 16-float line per four k steps
		}
		sgemmKernel512Direct(rows, kc, ad, lda, bblk[jr*kc:jr*kc+nr2*kc], j.c, j.cOff(ic, jj), j.cOff(ic, jj+sgemmNR), j.ldc, j.alpha, b, bias, mode, pf)
	}
	return nc32
}

// bias512 returns how a rows×32 kernel call for the tile at (i, jj) adds the job's bias in the
// first k block: the bias values from the tile's first on and the kernel's mode (1 per row, 2 per
// column), with beta 0 since the bias replaces C. A column bias for a batched C whose tile has
// its halves in two images (or parts of a fused Linear) is written into C by fillBias instead,
// and beta is kept.
func (j *sgemmJob) bias512(rows, i, jj int, first bool, beta float32) ([]float32, int, float32) {
	switch {
	case !first || j.bias == nil:
		return nil, 0, beta
	case j.biasRows:
		return j.bias[i : i+rows], 1, 0
	case j.cCols == 0 || jj/j.cCols == (jj+2*sgemmNR-1)/j.cCols:
		return j.bias[jj : jj+2*sgemmNR], 2, 0
	}
	j.fillBias(i, jj, rows, sgemmNR)
	j.fillBias(i, jj+sgemmNR, rows, sgemmNR)
	return nil, 0, beta
}
