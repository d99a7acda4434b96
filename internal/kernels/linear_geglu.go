package kernels

import (
	"sync/atomic"
)

// gegluTile is the rows of a LinearPackedGEGLU tile: a multiple of the 12-row micro-tile whose
// product (gegluTile × Out floats, 1–2 MB at the UNet's 2560 and 5120) stays in a core's L2
// (or close: 1 MiB on the Zen 5) until it is gated. On the Zen 5 (2 cores), 8192×320→2560 took
// 43–46 ms in 96-row tiles, 44–47 in 192, 47 in 48, against 54 ms for the blocked product and gate
// (LinearPacked then GEGLU on 816-row blocks); 2048×640→5120 44 against 48–50.
const gegluTile = 96

// gegluTileMaxWeight is the largest weight (In·Out values) LinearPackedGEGLU takes: every tile
// streams the whole weight from cache, which pays while it is a few MB (the UNet's 320→2560 and
// 640→5120 feed-forwards, 3.3 and 13 MB); 1280→10240 (52 MB) would come from memory per tile.
const gegluTileMaxWeight = 1 << 22

// GEGLUTileScratch is the scratch LinearPackedGEGLU needs for w to run on all workers: a tile of
// its product per worker, after the panels widened to float32 for a half weight (0 where it does
// not take w).
func GEGLUTileScratch(w *PackedWeight) int {
	if !gegluTiles(w) {
		return 0
	}
	return len(w.f16) + workers()*gegluTile*w.Out
}

func gegluTiles(w *PackedWeight) bool {
	return w != nil && (w.f32 != nil || w.f16 != nil) && w.Out%2 == 0 && w.In*w.Out <= gegluTileMaxWeight
}

// LinearPackedGEGLU computes y = GEGLU(x·Wᵀ + bias) (rows×Out/2, diffusers' GEGLU: the first half
// of each product row times the GELU of the second) for a packed weight of at most
// gegluTileMaxWeight values, and reports false (doing nothing) for any other weight. Half
// panels are first widened into the start of scratch, once for all tiles. Workers take tiles of
// gegluTile rows from a counter, each multiplying its tile alone into its share of scratch and
// gating it while it is in cache: no barrier between product and gate, and the product never goes
// through memory. As many workers run as scratch holds tiles for (GEGLUTileScratch for all of
// them).
func LinearPackedGEGLU(x []float32, rows int, w *PackedWeight, bias, y, scratch []float32) bool {
	if !gegluTiles(w) {
		return false
	}
	c := w.Out / 2
	if rows <= 0 || c == 0 {
		return true
	}
	_ = x[rows*w.In-1]
	_ = y[rows*c-1]
	tile := gegluTile * w.Out
	nt := (rows + gegluTile - 1) / gegluTile
	nw := min(workers(), (len(scratch)-len(w.f16))/tile, nt)
	if nw < 1 {
		return false
	}
	if h := w.f16; h != nil {
		wide := scratch[:len(h)]
		parallelFor(len(h), 1<<16, func(lo, hi int) {
			if w.brain {
				BF16ToF32(wide[lo:hi], h[lo:hi])
			} else {
				F16ToF32(wide[lo:hi], h[lo:hi])
			}
		})
		w = &PackedWeight{In: w.In, Out: w.Out, kc: w.kc, nPad: w.nPad, f32: wide}
		scratch = scratch[len(h):]
	}
	tileWorkers(nw, rows, gegluTile, func(wk, r0, n int) {
		h := scratch[wk*tile : (wk+1)*tile]
		a := sgemmSrc{data: x[r0*w.In : (r0+n)*w.In], ld: w.In}
		sgemmRunOn(1, n, w.Out, w.In, 1, &a, &sgemmSrc{packed: w}, 0, h, w.Out, 0, 0, bias, false)
		actGEGLURows(y[r0*c:(r0+n)*c], h, 0, n, c)
	})
	return true
}

// tileWorkers runs f on nw workers, each taking tiles of the given rows from a counter (no
// barrier between tiles): f(wk, r0, n) does rows [r0, r0+n) on worker wk's scratch.
func tileWorkers(nw, rows, tile int, f func(wk, r0, n int)) {
	var next atomic.Int64
	nt := (rows + tile - 1) / tile
	parallelFor(nw, 1, func(lo, hi int) {
		for wk := lo; wk < hi; wk++ {
			for {
				t := int(next.Add(1)) - 1
				if t >= nt {
					break
				}
				f(wk, t*tile, min(tile, rows-t*tile))
			}
		}
	})
}
