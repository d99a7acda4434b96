package kernels

import (
	"math"
	"math/rand"
	"runtime"
	"testing"
)

// TestLinearPackedGEGLU checks the tiled product-and-gate against LinearPacked followed by GEGLU
// (bit for bit) and against a float64 reference, on plain Go, AVX2 and AVX-512, on one and three workers and
// with scratch for fewer workers than run, on row counts around the tile, with float32 and half
// panels; and that it declines weights over gegluTileMaxWeight, an odd number of outputs and
// scratch too small for one tile.
func TestLinearPackedGEGLU(t *testing.T) {
	r := rand.New(rand.NewSource(31))
	var worstDiff, worstRef float64
	forEachGEMMPath(t, func(path string) {
		for i, s := range [][3]int{{1, 8, 2}, {95, 33, 96}, {96, 320, 64}, {97, 40, 640}, {300, 64, 160}, {2 * gegluTile, 16, 34}} {
			rows, in, out := s[0], s[1], s[2]
			c := out / 2
			x, wh, wf, bias, ref := linearRandCase(r, rows, in, out, i%2 == 0)
			want64 := make([]float64, rows*c)
			for j := range want64 {
				row, col := j/c, j%c
				a, g := ref[row*out+col], ref[row*out+c+col]
				if bias != nil {
					a, g = a+float64(bias[col]), g+float64(bias[c+col])
				}
				want64[j] = a * 0.5 * g * math.Erfc(-g/math.Sqrt2)
			}
			for _, half := range []bool{false, true} {
				pw := PackWeight(wf, out, in)
				if half {
					pw = PackWeightF16(wh, out, in)
				}
				for _, procs := range []int{1, 3} {
					for _, tiles := range []int{1, 2, 4} {
						old := runtime.GOMAXPROCS(procs)
						h, want := make([]float32, rows*out), make([]float32, rows*c)
						LinearPacked(x, rows, pw, bias, h)
						GEGLU(want, h, rows, c)
						got := make([]float32, rows*c)
						for j := range got {
							got[j] = float32(math.NaN())
						}
						ok := LinearPackedGEGLU(x, rows, pw, bias, got, make([]float32, len(pw.f16)+tiles*gegluTile*out))
						runtime.GOMAXPROCS(old)
						if !ok {
							t.Fatalf("%s %dx%d→%d: declined a small float32 weight", path, rows, in, out)
						}
						d := sgemmMaxDiff(got, want)
						worstDiff = math.Max(worstDiff, d)
						if !(d == 0) {
							t.Errorf("%s half=%v procs=%d tiles=%d %dx%d→%d: differs from LinearPacked+GEGLU by %g", path, half, procs, tiles, rows, in, out, d)
						}
						var e, scale float64
						for j, v := range got {
							e, scale = math.Max(e, math.Abs(float64(v)-want64[j])), math.Max(scale, math.Abs(want64[j]))
						}
						e /= scale
						worstRef = math.Max(worstRef, e)
						if !(e <= 5e-5) {
							t.Errorf("%s half=%v procs=%d tiles=%d %dx%d→%d: error %.3g vs float64", path, half, procs, tiles, rows, in, out, e)
						}
					}
				}
			}
		}
	})
	t.Logf("LinearPackedGEGLU: largest difference from LinearPacked+GEGLU %.3g (must be 0: same products, same gate), largest error vs float64 %.3g (relative to the largest |y|, tolerance 5e-5)", worstDiff, worstRef)

	x, y := make([]float32, 4*8), make([]float32, 4*8)
	wh, wf := sgemmRandHalf(r, 16*8)
	for name, w := range map[string]*PackedWeight{
		"large": PackWeight(make([]float32, 4*(2*(gegluTileMaxWeight/8+1))), 2*(gegluTileMaxWeight/8+1), 4),
		"odd":   PackWeight(wf[:15*8], 15, 8),
	} {
		if LinearPackedGEGLU(x, 4, w, nil, y, make([]float32, 4*gegluTile*w.Out)) || GEGLUTileScratch(w) != 0 {
			t.Errorf("%s weight: taken, want declined", name)
		}
	}
	if LinearPackedGEGLU(x, 4, PackWeight(wf, 16, 8), nil, y, make([]float32, gegluTile*16-1)) {
		t.Error("scratch short of one tile: taken, want declined")
	}
	if hw := PackWeightF16(wh, 16, 8); LinearPackedGEGLU(x, 4, hw, nil, y, make([]float32, len(hw.f16)+gegluTile*16-1)) {
		t.Error("half weight, scratch short of the widened panels and one tile: taken, want declined")
	}
}
