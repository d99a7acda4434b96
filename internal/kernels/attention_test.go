package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"
	"time"
)

// attnRef is the naive float64 reference: full score rows, softmax, weighted sum.
func attnRef(p AttentionParams, q, k, v []float32) []float64 {
	d, w := p.HeadDim, p.Heads*p.HeadDim
	out := make([]float64, p.Batch*p.Nq*w)
	s := make([]float64, p.Nk)
	for b := 0; b < p.Batch; b++ {
		for h := 0; h < p.Heads; h++ {
			for i := 0; i < p.Nq; i++ {
				qr := q[(b*p.Nq+i)*w+h*d:]
				nk := p.Nk
				if p.Causal {
					nk = min(nk, i+1)
				}
				mx := math.Inf(-1)
				for j := 0; j < nk; j++ {
					kr := k[(b*p.Nk+j)*w+h*d:]
					var dot float64
					for t := 0; t < d; t++ {
						dot += float64(qr[t]) * float64(kr[t])
					}
					s[j] = dot * float64(p.Scale)
					mx = math.Max(mx, s[j])
				}
				var sum float64
				for j := 0; j < nk; j++ {
					s[j] = math.Exp(s[j] - mx)
					sum += s[j]
				}
				o := out[(b*p.Nq+i)*w+h*d:]
				for j := 0; j < nk; j++ {
					vr := v[(b*p.Nk+j)*w+h*d:]
					for t := 0; t < d; t++ {
						o[t] += s[j] / sum * float64(vr[t])
					}
				}
			}
		}
	}
	return out
}

func randSlice(r *rand.Rand, n int, scale float32) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(r.NormFloat64()) * scale
	}
	return x
}

// maxErr returns the largest |got−ref| and max|ref|.
func maxErr(got []float32, ref []float64) (e, mag float64) {
	for i, r := range ref {
		e = math.Max(e, math.Abs(float64(got[i])-r))
		mag = math.Max(mag, math.Abs(r))
	}
	return e, mag
}

// withAVX2 runs f with useAVX2 set to on (if the CPU allows it) and restores it.
func withAVX2(on bool, f func()) {
	old := useAVX2
	useAVX2 = on && old
	defer func() { useAVX2 = old }()
	f()
}

var attnShapes = []AttentionParams{
	{Batch: 1, Heads: 1, Nq: 1, Nk: 1, HeadDim: 1},
	{Batch: 1, Heads: 1, Nq: 1, Nk: 1, HeadDim: 8},
	{Batch: 2, Heads: 3, Nq: 7, Nk: 5, HeadDim: 13},
	{Batch: 1, Heads: 2, Nq: 5, Nk: 1, HeadDim: 40},
	{Batch: 1, Heads: 1, Nq: 97, Nk: 131, HeadDim: 40},
	{Batch: 2, Heads: 8, Nq: 64, Nk: 77, HeadDim: 40},
	{Batch: 1, Heads: 2, Nq: 77, Nk: 77, HeadDim: 64, Causal: true},
	{Batch: 1, Heads: 12, Nq: 77, Nk: 77, HeadDim: 64, Causal: true},
	{Batch: 1, Heads: 1, Nq: 53, Nk: 53, HeadDim: 3, Causal: true},
	{Batch: 1, Heads: 1, Nq: 100, Nk: 130, HeadDim: 7, Causal: true},
	{Batch: 1, Heads: 5, Nq: 49, Nk: 200, HeadDim: 160},
	{Batch: 1, Heads: 1, Nq: 50, Nk: 70, HeadDim: 512},
	{Batch: 1, Heads: 4, Nq: 2, Nk: 300, HeadDim: 17},
}

func TestAttention(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for _, p := range attnShapes {
		p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
		w := p.Heads * p.HeadDim
		q := randSlice(r, p.Batch*p.Nq*w, 1.5)
		k := randSlice(r, p.Batch*p.Nk*w, 1.5)
		v := randSlice(r, p.Batch*p.Nk*w, 1)
		ref := attnRef(p, q, k, v)
		fast := make([]float32, len(ref))
		plain := make([]float32, len(ref))
		Attention(p, q, k, v, fast)
		withAVX2(false, func() { Attention(p, q, k, v, plain) })
		ef, mag := maxErr(fast, ref)
		ep, _ := maxErr(plain, ref)
		var diff float64
		for i := range fast {
			diff = math.Max(diff, math.Abs(float64(fast[i]-plain[i])))
		}
		t.Logf("%+v: max err fast %.3g plain %.3g (|ref| ≤ %.3g), fast vs plain %.3g", p, ef, ep, mag, diff)
		tol := 4e-6 * math.Max(1, mag)
		if ef > tol || ep > tol {
			t.Errorf("%+v: error %.3g / %.3g exceeds %.3g", p, ef, ep, tol)
		}
	}
}

func TestAttentionAllocs(t *testing.T) {
	p := AttentionParams{Batch: 2, Heads: 3, Nq: 100, Nk: 90, HeadDim: 40, Scale: 0.15}
	r := rand.New(rand.NewSource(2))
	n := p.Batch * p.Nq * p.Heads * p.HeadDim
	q, k, v, out := randSlice(r, n, 1), randSlice(r, n*90/100, 1), randSlice(r, n*90/100, 1), make([]float32, n)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	Attention(p, q, k, v, out)
	a := testing.AllocsPerRun(20, func() { Attention(p, q, k, v, out) })
	t.Logf("allocations per call with GOMAXPROCS=1: %v", a)
	if a != 0 {
		t.Errorf("Attention allocates %v times per call after warm-up", a)
	}
}

func BenchmarkAttention(b *testing.B) {
	for _, p := range []AttentionParams{
		{Batch: 2, Heads: 8, Nq: 4096, Nk: 4096, HeadDim: 40},
		{Batch: 2, Heads: 8, Nq: 4096, Nk: 77, HeadDim: 40},
		{Batch: 1, Heads: 1, Nq: 4096, Nk: 4096, HeadDim: 512},
		{Batch: 2, Heads: 12, Nq: 77, Nk: 77, HeadDim: 64, Causal: true},
	} {
		name := fmt.Sprintf("%dx%dx%dx%d", p.Batch, p.Heads, p.Nq, p.HeadDim)
		if p.Nk != p.Nq {
			name = fmt.Sprintf("%dx%dx%dx%dx%d", p.Batch, p.Heads, p.Nq, p.Nk, p.HeadDim)
		}
		if p.Causal {
			name += "causal"
		}
		b.Run(name, func(b *testing.B) {
			p.Scale = float32(1 / math.Sqrt(float64(p.HeadDim)))
			r := rand.New(rand.NewSource(3))
			w := p.Heads * p.HeadDim
			q := randSlice(r, p.Batch*p.Nq*w, 1)
			k := randSlice(r, p.Batch*p.Nk*w, 1)
			v := randSlice(r, p.Batch*p.Nk*w, 1)
			out := make([]float32, len(q))
			Attention(p, q, k, v, out)
			b.ResetTimer()
			c0 := cpuTime()
			for i := 0; i < b.N; i++ {
				Attention(p, q, k, v, out)
			}
			flops := 4 * float64(p.Batch*p.Heads*p.Nq*p.Nk*p.HeadDim) * float64(b.N)
			reportRates(b, flops, c0)
		})
	}
}

// reportRates reports GFLOP/s (wall) and GFLOP per CPU-second (the latter is what the kernel
// achieves per busy core, whatever else the machine runs).
func reportRates(b *testing.B, flops float64, c0 time.Duration) {
	b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if c := cpuTime() - c0; c > 0 {
		b.ReportMetric(flops/c.Seconds()/1e9, "GFLOP/cpu-s")
	}
}
