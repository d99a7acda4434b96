package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"
)

// linearPartsShapes are rows×in→parts×part cases: the UNet's fused q/k/v (parts 3) and k/v
// (parts 2) at a reduced row count, edges of 12×32 tiles and of the 6×16 ones, parts of 16
// columns (two parts in one 32-wide AVX-512 tile), one part, no input columns.
var linearPartsShapes = [][4]int{{1, 1, 3, 16}, {7, 33, 2, 48}, {13, 320, 3, 320}, {154, 768, 2, 320},
	{100, 40, 3, 16}, {37, 96, 4, 32}, {29, 640, 1, 64}, {300, 64, 3, 80}, {5, 0, 2, 16}}

// unsplit returns the parts of y (each rows×part, one after another) as one rows×(parts·part)
// matrix.
func unsplit(y []float32, rows, parts, part int) []float32 {
	out := make([]float32, rows*parts*part)
	for p := 0; p < parts; p++ {
		for r := 0; r < rows; r++ {
			copy(out[r*parts*part+p*part:r*parts*part+(p+1)*part], y[(p*rows+r)*part:])
		}
	}
	return out
}

// TestLinearPackedParts checks that PackWeightParts packs the stacked matrix, and that
// LinearPackedParts gives the parts of LinearPacked's result on the same packed weight (float32
// and half panels), on plain Go, AVX2 and AVX-512, on one and three workers, and against a
// float64 reference.
func TestLinearPackedParts(t *testing.T) {
	cw := linearChunkWeight
	defer func() { linearChunkWeight = cw }()
	linearChunkWeight = 0 // rows in chunks from 257 to 768 rows (300×64→3×80)
	r := rand.New(rand.NewSource(23))
	var worst, worstDiff float64
	forEachGEMMPath(t, func(path string) {
		for i, s := range linearPartsShapes {
			rows, in, parts, part := s[0], s[1], s[2], s[3]
			out := parts * part
			x, wh, wf, bias, ref := linearRandCase(r, rows, in, out, i%2 == 0)
			for j := range ref {
				if bias != nil {
					ref[j] += float64(bias[j%out])
				}
			}
			var ws [][]float32
			for p := 0; p < parts; p++ {
				ws = append(ws, wf[p*part*in:(p+1)*part*in])
			}
			if d := sgemmMaxDiff(PackWeightParts(ws, part, in).Unpack(), wf); d != 0 {
				t.Errorf("%dx%d→%d×%d: PackWeightParts unpacks to a matrix off by %g", rows, in, parts, part, d)
			}
			for _, half := range []bool{false, true} {
				pw := PackWeightParts(ws, part, in)
				if half {
					pw = PackWeightF16(wh, out, in)
				}
				for _, procs := range []int{1, 3} {
					old := runtime.GOMAXPROCS(procs)
					want, got := make([]float32, rows*out), make([]float32, rows*out)
					for j := range got {
						got[j] = float32(math.NaN())
					}
					LinearPacked(x, rows, pw, bias, want)
					LinearPackedParts(x, rows, pw, bias, part, got)
					runtime.GOMAXPROCS(old)
					got = unsplit(got, rows, parts, part)
					d := sgemmMaxDiff(got, want)
					worstDiff = math.Max(worstDiff, d)
					if !(d == 0) {
						t.Errorf("%s half=%v procs=%d %dx%d→%d×%d: differs from LinearPacked by %g", path, half, procs, rows, in, parts, part, d)
					}
					e := sgemmRelErr(got, out, ref, rows, out)
					worst = math.Max(worst, e)
					if !(e <= 1e-5) {
						t.Errorf("%s half=%v procs=%d %dx%d→%d×%d: relative error %.3g vs float64", path, half, procs, rows, in, parts, part, e)
					}
				}
			}
		}
	})
	t.Logf("LinearPackedParts: largest difference from LinearPacked %.3g (must be 0), largest relative error vs float64 %.3g (tolerance 1e-5)", worstDiff, worst)
}

// TestLinearBF16Parts checks LinearBF16Parts against the parts of LinearBF16's result on every
// bf16 path.
func TestLinearBF16Parts(t *testing.T) {
	r := rand.New(rand.NewSource(29))
	worst := map[string]float64{}
	for i, s := range linearPartsShapes {
		rows, in, parts, part := s[0], s[1], s[2], s[3]
		out := parts * part
		x, wf := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in)
		wh, _ := bf16Rounded(wf)
		var bias []float32
		if i%2 == 1 {
			bias = sgemmRandSlice(r, out)
		}
		for _, procs := range []int{1, 3} {
			old := runtime.GOMAXPROCS(procs)
			for _, path := range bf16Paths {
				withBF16Path(path, func() {
					want, got := make([]float32, rows*out), make([]float32, rows*out)
					for j := range got {
						got[j] = float32(math.NaN())
					}
					LinearBF16(x, rows, in, wh, out, bias, want)
					LinearBF16Parts(x, rows, in, wh, out, bias, part, got)
					d := sgemmMaxDiff(unsplit(got, rows, parts, part), want)
					worst[path] = math.Max(worst[path], d)
					if !(d == 0) {
						t.Errorf("%s procs=%d %dx%d→%d×%d: differs from LinearBF16 by %g", path, procs, rows, in, parts, part, d)
					}
				})
			}
			runtime.GOMAXPROCS(old)
		}
	}
	logWorst(t, "LinearBF16Parts vs LinearBF16 (must be 0)", "largest absolute difference", worst, 0)
}

// BenchmarkLinearQKV times the UNet's self-attention projections at 64×64 latents (batch 2,
// 8192 tokens of 320) and lower resolutions, and CLIP L/14's (154 tokens of 768): three
// LinearPacked calls against one LinearPackedParts.
func BenchmarkLinearQKV(b *testing.B) {
	r := rand.New(rand.NewSource(1))
	for _, s := range [][2]int{{8192, 320}, {2048, 640}, {512, 1280}, {154, 768}} {
		rows, c := s[0], s[1]
		x := sgemmRandSlice(r, rows*c)
		w := sgemmRandSlice(r, 3*c*c)
		y := make([]float32, 3*rows*c)
		sep := []*PackedWeight{PackWeight(w[:c*c], c, c), PackWeight(w[c*c:2*c*c], c, c), PackWeight(w[2*c*c:], c, c)}
		fused := PackWeight(w, 3*c, c)
		flops := 2 * float64(rows) * float64(c) * float64(3*c)
		b.Run(fmt.Sprint("separate/", c), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for j, pw := range sep {
					LinearPacked(x, rows, pw, nil, y[j*rows*c:])
				}
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run(fmt.Sprint("fused/", c), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				LinearPackedParts(x, rows, fused, nil, c, y)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}
