package kernels

import (
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/smallsd/smallsd/internal/benchutil"
	"github.com/smallsd/smallsd/internal/golden"
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
		plain := make([]float32, len(ref))
		withSgemmPath(2, func() { Attention(p, q, k, v, plain) })
		ep, mag := maxErr(plain, ref)
		tol := 4e-6 * math.Max(1, mag)
		if ep > tol {
			t.Errorf("%+v: plain Go error %.3g exceeds %.3g", p, ep, tol)
		}
		// Each assembly path (AVX-512 kernels, AVX2 kernels) against float64 and plain Go.
		for path := 0; path < 2; path++ {
			fast := make([]float32, len(ref))
			inPlace := append([]float32(nil), q...)
			if !withSgemmPath(path, func() {
				Attention(p, q, k, v, fast)
				Attention(p, inPlace, k, v, inPlace) // out = q
			}) {
				t.Logf("%+v: %s path not supported by this CPU", p, sgemmPaths[path].name)
				continue
			}
			for i := range inPlace {
				if inPlace[i] != fast[i] {
					t.Errorf("%+v %s: in place (out = q) differs at %d: %g vs %g", p, sgemmPaths[path].name, i, inPlace[i], fast[i])
					break
				}
			}
			ef, _ := maxErr(fast, ref)
			var diff float64
			for i := range fast {
				diff = math.Max(diff, math.Abs(float64(fast[i]-plain[i])))
			}
			label := fmt.Sprintf("%+v %s", p, sgemmPaths[path].name)
			t.Logf("%s: max abs error %.3g (limit %.3g, max|ref| %.3g); plain Go %.3g, vs plain Go %.3g", label, ef, tol, mag, ep, diff)
			if ef > tol || diff > tol {
				t.Errorf("%+v %s: error %.3g (vs plain %.3g) exceeds %.3g", p, sgemmPaths[path].name, ef, diff, tol)
			}
		}
	}
}

func TestAttentionAllocs(t *testing.T) {
	if raceBuild {
		t.Skip("sync.Pool drops items at random under -race")
	}
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

// TestAttentionMemory checks that Attention's memory is O(N·d): the score matrix of this call
// alone would take 32 MiB.
func TestAttentionMemory(t *testing.T) {
	p := AttentionParams{Batch: 1, Heads: 2, Nq: 2048, Nk: 2048, HeadDim: 40, Scale: 0.158}
	r := rand.New(rand.NewSource(18))
	n := p.Batch * p.Nq * p.Heads * p.HeadDim
	q, k, v, out := randSlice(r, n, 1), randSlice(r, n, 1), randSlice(r, n, 1), make([]float32, n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	Attention(p, q, k, v, out)
	runtime.ReadMemStats(&after)
	got := after.TotalAlloc - before.TotalAlloc
	t.Logf("Attention %+v allocated %d KiB (scores would be %d KiB)", p, got>>10, p.Heads*p.Nq*p.Nk*4>>10)
	if got > 4<<20 {
		t.Errorf("Attention allocated %d bytes", got)
	}
}

func BenchmarkAttention(b *testing.B) {
	for _, p := range []AttentionParams{
		{Batch: 2, Heads: 8, Nq: 4096, Nk: 4096, HeadDim: 40},
		{Batch: 2, Heads: 8, Nq: 4096, Nk: 77, HeadDim: 40},
		{Batch: 2, Heads: 8, Nq: 1024, Nk: 1024, HeadDim: 80},
		{Batch: 2, Heads: 8, Nq: 256, Nk: 256, HeadDim: 160},
		{Batch: 2, Heads: 8, Nq: 256, Nk: 77, HeadDim: 160},
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
			c0 := benchutil.CPUTime()
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
	if c := benchutil.CPUTime() - c0; c > 0 {
		b.ReportMetric(flops/c.Seconds()/1e9, "GFLOP/cpu-s")
	}
}

// TestAttentionLargeScores runs the online softmax where the running maximum jumps by hundreds
// between key tiles (α underflows to 0) and where every score is equal.
func TestAttentionLargeScores(t *testing.T) {
	r := rand.New(rand.NewSource(21))
	p := AttentionParams{Batch: 1, Heads: 2, Nq: 50, Nk: 300, HeadDim: 24, Scale: 1}
	n, m := p.Nq*p.Heads*p.HeadDim, p.Nk*p.Heads*p.HeadDim
	q, k, v := randSlice(r, n, 6), randSlice(r, m, 6), randSlice(r, m, 1)
	// Later keys score higher, so the maximum keeps rising tile after tile.
	for j := 0; j < p.Nk; j++ {
		for c := 0; c < p.Heads*p.HeadDim; c++ {
			k[j*p.Heads*p.HeadDim+c] *= 1 + float32(j)/50
		}
	}
	ref := attnRef(p, q, k, v)
	for _, avx := range []bool{true, false} {
		out := make([]float32, n)
		withAVX2(avx, func() { Attention(p, q, k, v, out) })
		e, mag := maxErr(out, ref)
		// Scores reach about ±2000; float32 rounding of a score moves its weight by up to about
		// 2000·2^-24 relative, which bounds what any float32 implementation can do; this one
		// measures 6.8e-8 × max|ref|, and 5e-7 is about 7× that.
		golden.Within(t, fmt.Sprintf("large scores avx=%v", avx), "max abs", e, 5e-7*math.Max(1, mag))
	}
	// Equal scores: the output is the mean of the values.
	for i := range q {
		q[i] = 0
	}
	out := make([]float32, n)
	Attention(p, q, k, v, out)
	ref = attnRef(p, q, k, v)
	e, _ := maxErr(out, ref)
	golden.Within(t, "equal scores", "max abs", e, 5e-7) // 4.8e-8 measured
}
