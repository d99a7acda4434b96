package kernels

import (
	"math"
	"math/rand"
	"testing"
)

// attnAMXSimShapes are the attention shapes the simulated tile kernel runs (it is slow): odd sizes,
// a head dim over one k tile, several key tiles, a causal mask, and a head dim of 512.
var attnAMXSimShapes = []AttentionParams{
	{Batch: 1, Heads: 1, Nq: 1, Nk: 1, HeadDim: 1},
	{Batch: 2, Heads: 3, Nq: 7, Nk: 5, HeadDim: 13},
	{Batch: 1, Heads: 1, Nq: 97, Nk: 131, HeadDim: 40},
	{Batch: 1, Heads: 2, Nq: 50, Nk: 77, HeadDim: 64, Causal: true},
	{Batch: 1, Heads: 1, Nq: 20, Nk: 40, HeadDim: 512},
}

// attnAMXRun runs the AMX attention on kern and the bf16 plain-Go twin for p on random inputs,
// returning both and the float64 reference on the unrounded inputs.
func attnAMXRun(r *rand.Rand, p AttentionParams, kern amxKernelFunc) (got, twin []float32, ref []float64) {
	p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
	w := p.Heads * p.HeadDim
	q := randSlice(r, p.Batch*p.Nq*w, 1.5)
	k := randSlice(r, p.Batch*p.Nk*w, 1.5)
	v := randSlice(r, p.Batch*p.Nk*w, 1)
	ref = attnRef(p, q, k, v)
	got, twin = make([]float32, len(ref)), make([]float32, len(ref))
	for i := range got {
		got[i] = float32(math.NaN())
	}
	attention(p, q, k, v, got, true, kern)
	withBF16Path("bf16-twin", func() { attention(p, q, k, v, twin, true, nil) })
	return got, twin, ref
}

// attnAMXCheck compares an AMX attention result with the float64 reference (the bf16 paths'
// bound) and with the VDPBF16PS twin: the same roundings of q, k, v and p, but products summed
// in another order and, at head dims whose key tile is not a multiple of 32, other key tiles, so
// that probabilities are rounded to bf16 against other running maxima (measured: 2.5e-3 at head
// dim 160, 1.4e-3 at head dim 40 with 131 keys).
func attnAMXCheck(t *testing.T, p AttentionParams, got, twin []float32, ref []float64, worst map[string]float64) {
	t.Helper()
	e, mag := maxErr(got, ref)
	e /= math.Max(1, mag)
	worst["vs float64"] = math.Max(worst["vs float64"], e)
	if !(e <= 3e-2) {
		t.Errorf("%+v: error %.3g × max(1, max|ref|) exceeds 3e-2", p, e)
	}
	diff := attnDiff(got, twin)
	worst["vs the VDPBF16PS twin"] = math.Max(worst["vs the VDPBF16PS twin"], diff)
	if !(diff <= 1e-2) {
		t.Errorf("%+v: AMX and twin differ by %.3g × max(1, max|out|) (limit 1e-2)", p, diff)
	}
}

// TestAttentionAMXSim runs the AMX attention with the simulated tile kernel (every machine), also
// a query tile at a time rather than two, which must give the same bits.
func TestAttentionAMXSim(t *testing.T) {
	r := rand.New(rand.NewSource(41))
	worst := map[string]float64{}
	for _, p := range attnAMXSimShapes {
		got, twin, ref := attnAMXRun(r, p, amxKernelSim)
		attnAMXCheck(t, p, got, twin, ref, worst)
		p.Scale = 0.2
		w := p.Heads * p.HeadDim
		q, k, v := randSlice(r, p.Batch*p.Nq*w, 1.5), randSlice(r, p.Batch*p.Nk*w, 1.5), randSlice(r, p.Batch*p.Nk*w, 1)
		pairs, single := make([]float32, len(q)), make([]float32, len(q))
		attention(p, q, k, v, pairs, true, amxKernelSim)
		attnAMXPairs = false
		attention(p, q, k, v, single, true, amxKernelSim)
		attnAMXPairs = true
		for i := range pairs {
			if math.Float32bits(pairs[i]) != math.Float32bits(single[i]) {
				t.Fatalf("%+v: out[%d] = %g with query tiles in pairs, %g one at a time", p, i, pairs[i], single[i])
			}
		}
	}
	t.Logf("AMX attention (simulated kernel), largest error × max(1, max|ref|): %v", worst)
}

// TestAttentionAMX runs AttentionBF16 on AMX hardware on every attention test shape, also in place
// (out = q), and the simulated shapes against the simulator bit for bit.
func TestAttentionAMX(t *testing.T) {
	amxNeedsCPU(t)
	if !(amxOn() && useBF16) {
		t.Skip("AMX attention needs the AVX-512 path (off here, e.g. GODEBUG=cpu.avx512f=off)")
	}
	r := rand.New(rand.NewSource(42))
	worst := map[string]float64{}
	for _, p := range attnShapes {
		got, twin, ref := attnAMXRun(r, p, amxKernelAsm)
		attnAMXCheck(t, p, got, twin, ref, worst)
	}
	for _, p := range attnAMXSimShapes {
		p.Scale = 0.3
		w := p.Heads * p.HeadDim
		q, k, v := randSlice(r, p.Batch*p.Nq*w, 1.5), randSlice(r, p.Batch*p.Nk*w, 1.5), randSlice(r, p.Batch*p.Nk*w, 1)
		hw, sim := make([]float32, len(q)), make([]float32, len(q))
		AttentionBF16(p, q, k, v, hw)
		attention(p, q, k, v, sim, true, amxKernelSim)
		inPlace := append([]float32(nil), q...)
		AttentionBF16(p, inPlace, k, v, inPlace)
		for i := range hw {
			if math.Float32bits(hw[i]) != math.Float32bits(sim[i]) || inPlace[i] != hw[i] {
				t.Fatalf("%+v: out[%d] = %g, simulator %g, in place %g", p, i, hw[i], sim[i], inPlace[i])
			}
		}
	}
	t.Logf("AMX attention, largest error × max(1, max|ref|): %v; the simulated shapes bit for bit the simulator's", worst)
}
