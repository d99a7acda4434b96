package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// TestLinearPacked checks that a weight packed at load gives exactly what Linear (and LinearF16)
// give on the row-major matrix — the k blocking and kernels are the same — on plain Go, AVX2 and
// AVX-512, for odd shapes that reach every split of the GEMM (rows or columns, shared operand or
// not, A read in place, k blocked or not), and that Unpack restores the matrix.
func TestLinearPacked(t *testing.T) {
	cw := linearChunkWeight
	defer func() { linearChunkWeight = cw }()
	linearChunkWeight = 0 // rows in chunks from 257 to 768 rows (300×650→47)
	r := rand.New(rand.NewSource(21))
	var worst float64
	forEachGEMMPath(t, func(path string) {
		for _, s := range [][3]int{{1, 1, 1}, {5, 13, 17}, {7, 33, 70}, {154, 768, 96}, {77, 40, 320},
			{154, 700, 530}, {300, 650, 47}, {1030, 96, 200}, {13, 1000, 600}} {
			rows, in, out := s[0], s[1], s[2]
			x := sgemmRandSlice(r, rows*in)
			wh, wf := sgemmRandHalf(r, out*in)
			bias := sgemmRandSlice(r, out)
			for _, half := range []bool{false, true} {
				var pw *PackedWeight
				want, got := make([]float32, rows*out), make([]float32, rows*out)
				if half {
					pw = PackWeightF16(wh, out, in)
					LinearF16(x, rows, in, wh, out, bias, want)
				} else {
					pw = PackWeight(wf, out, in)
					Linear(x, rows, in, wf, out, bias, want)
				}
				for i := range got {
					got[i] = float32(math.NaN())
				}
				LinearPacked(x, rows, pw, bias, got)
				if d := sgemmMaxDiff(got, want); !(d == 0) {
					t.Errorf("%s half=%v LinearPacked %dx%d→%d: differs from Linear by %g", path, half, rows, in, out, d)
				}
				ref := make([]float64, rows*out)
				for i := 0; i < rows; i++ {
					for o := 0; o < out; o++ {
						acc := float64(bias[o])
						for p := 0; p < in; p++ {
							acc += float64(x[i*in+p]) * float64(wf[o*in+p])
						}
						ref[i*out+o] = acc
					}
				}
				worst = math.Max(worst, sgemmRelErr(got, out, ref, rows, out))
				if d := sgemmMaxDiff(pw.Unpack(), wf); d != 0 {
					t.Errorf("half=%v %d×%d: Unpack differs by %g", half, out, in, d)
				}
				if pw.Half() != half || pw.Bytes() < int64(out*in)*2 {
					t.Errorf("half=%v: Half() %v, %d bytes", half, pw.Half(), pw.Bytes())
				}
			}
		}
	})
	t.Logf("LinearPacked matches Linear exactly; largest relative error vs float64 %.3g", worst)
}

// forEachGEMMPath runs f once on each GEMM path this CPU has — plain Go, AVX2, AVX-512 — with
// useAVX2 and useAVX512 set for it (and restored after), logging the paths it skips.
func forEachGEMMPath(t *testing.T, f func(path string)) {
	s2, s512 := useAVX2, useAVX512
	defer func() { useAVX2, useAVX512 = s2, s512 }()
	for _, p := range []struct {
		name         string
		avx2, avx512 bool
	}{{"go", false, false}, {"avx2", true, false}, {"avx512", true, true}} {
		if p.avx2 && !s2 || p.avx512 && !s512 {
			t.Logf("%s: not supported by this CPU, skipped", p.name)
			continue
		}
		useAVX2, useAVX512 = p.avx2, p.avx512
		f(p.name)
	}
}

// linearRandCase returns a random rows×in input, an out×in weight as half bits and their float32
// values, a bias (or nil) and the float64 product x·wᵀ without the bias.
func linearRandCase(r *rand.Rand, rows, in, out int, withBias bool) (x []float32, wh []uint16, wf, bias []float32, ref []float64) {
	x = sgemmRandSlice(r, rows*in)
	wh, wf = sgemmRandHalf(r, out*in)
	if withBias {
		bias = sgemmRandSlice(r, out)
	}
	return x, wh, wf, bias, sgemmRef(false, true, rows, out, in, 1, x, in, wf, in, 0, nil, out)
}
