package kernels

// GEGLU on AMX: LinearPackedGEGLU's row tiles for a bf16 weight packed for AMX. Without it the
// feed-forward's first product (the UNet's 8192×320→2560 at 64×64: 168 MB of float32) went through
// memory in blocks and was read back to be gated, and that traffic, not the tiles, bounded it
// (53.6 ms a forward for that layer on a 2-core Xeon with AMX).

// amxGEGLUTile is the rows of a tile: two row blocks of the tile kernel; its product (64 × 2560
// floats at the UNet's largest, 640 KiB) stays in the core's L2 until it is gated.
const amxGEGLUTile = 2 * amxMR

// GEGLUTileScratchBF16 is GEGLUTileScratch for a bf16 weight: LinearBF16PackedGEGLU's tiles for
// all workers (0 where it does not take w).
func GEGLUTileScratchBF16(w *BF16Weight) int {
	if !amxGEGLU(w) {
		return 0
	}
	return workers() * amxGEGLUTile * (w.Rows + w.Cols/2)
}

// amxGEGLU reports whether LinearBF16PackedGEGLU takes w: AMX on, and w packed for it.
func amxGEGLU(w *BF16Weight) bool { return amxOn() && amxGEGLUWeight(w) }

// amxGEGLUWeight reports whether w is a Linear's weight in pair panels of whole k tiles, which
// the tile kernel reads in place.
func amxGEGLUWeight(w *BF16Weight) bool {
	return w != nil && w.Rows%2 == 0 && w.Cols%(2*amxKT) == 0 && w.pairPanels() != nil &&
		!w.conv && w.kc%amxKT == 0 && w.kc <= amxKCMax
}

// LinearBF16PackedGEGLU computes y = GEGLU(x·Wᵀ + bias) (rows×Rows/2) for a bf16 weight packed
// for AMX, and reports false (doing nothing) for any other weight or too short a scratch
// (GEGLUTileScratchBF16). Workers take tiles of amxGEGLUTile rows from a counter, round them to
// bf16, multiply each alone on the tile kernel into their share of scratch and gate it there.
func LinearBF16PackedGEGLU(x []float32, rows int, w *BF16Weight, bias, y, scratch []float32) bool {
	return amxGEGLU(w) && linearGEGLUAMX(amxKernelAsm, x, rows, w, bias, y, scratch)
}

// linearGEGLUAMX is LinearBF16PackedGEGLU on the tile kernel kern for a weight that
// amxGEGLUWeight accepts.
func linearGEGLUAMX(kern amxKernelFunc, x []float32, rows int, w *BF16Weight, bias, y, scratch []float32) bool {
	in, out, c := w.Cols, w.Rows, w.Rows/2
	if rows <= 0 {
		return true
	}
	_ = x[rows*in-1]
	_ = y[rows*c-1]
	per := amxGEGLUTile * (out + in/2) // a tile's product, then its rows as bf16 (pairs)
	nt := (rows + amxGEGLUTile - 1) / amxGEGLUTile
	nw := min(workers(), len(scratch)/per, nt)
	if nw < 1 {
		return false
	}
	tileWorkers(nw, rows, amxGEGLUTile, func(wk, r0, n int) {
		sc := scratch[wk*per : (wk+1)*per]
		h, xr := sc[:amxGEGLUTile*out], u16s(sc[amxGEGLUTile*out:])
		F32ToBF16(xr[:n*in], x[r0*in:(r0+n)*in])
		a := sgemmSrc{half: xr[:n*in], brain: true, ld: in, pairs: true, pairK: in}
		amxGemmOn(true, kern, n, out, in, &a, &sgemmSrc{}, w, h, out, 0, 0, bias, false)
		actGEGLURows(y[r0*c:(r0+n)*c], h, 0, n, c)
	})
	return true
}
