package kernels

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/smallsd/smallsd/internal/benchutil"
)

func BenchmarkTmpConvS2(b *testing.B) {
	for _, s := range [][5]int{{2, 320, 64, 64, 320}, {2, 640, 32, 32, 640}, {2, 1280, 16, 16, 1280}} {
		p := ConvParams{N: s[0], C: s[1], H: s[2], W: s[3], K: s[4], KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
		b.Run(fmt.Sprint(s), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			oh, ow := p.OutSize()
			x, w, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9), sgemmRandSlice(r, p.K)
			y := make([]float32, p.N*p.K*oh*ow)
			Conv2D(p, x, w, bias, y)
			b.ResetTimer()
			c0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				Conv2D(p, x, w, bias, y)
			}
			b.ReportMetric(2*float64(p.N*oh*ow*p.K*p.C*9)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric((benchutil.CPUSeconds()-c0)/b.Elapsed().Seconds(), "busy")
		})
	}
}

func BenchmarkTmpWino(b *testing.B) {
	for _, s := range [][5]int{{2, 320, 64, 64, 320}, {2, 640, 64, 64, 320}, {2, 640, 32, 32, 640}, {2, 1280, 16, 16, 1280}, {2, 2560, 16, 16, 1280}} {
		p := ConvParams{N: s[0], C: s[1], H: s[2], W: s[3], K: s[4], KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
		b.Run(fmt.Sprint(s), func(b *testing.B) {
			r := rand.New(rand.NewSource(1))
			oh, ow := p.OutSize()
			x, w, bias := sgemmRandSlice(r, p.N*p.C*p.H*p.W), sgemmRandSlice(r, p.K*p.C*9), sgemmRandSlice(r, p.K)
			y := make([]float32, p.N*p.K*oh*ow)
			Conv2DWinogradW(p, x, w, bias, y)
			b.ResetTimer()
			c0 := benchutil.CPUSeconds()
			for i := 0; i < b.N; i++ {
				Conv2DWinogradW(p, x, w, bias, y)
			}
			b.ReportMetric(2*float64(p.N*oh*ow*p.K*p.C*9)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric((benchutil.CPUSeconds()-c0)/b.Elapsed().Seconds(), "busy")
		})
	}
}

func BenchmarkTmpPV(b *testing.B) {
	const d = 40
	s := make([]float32, attnBQ*attnKBC)
	v := make([]float32, attnKBC*d)
	o := make([]float32, attnBQ*d)
	for _, nk := range []int{16, 32, 64, 128} {
		b.Run(fmt.Sprint(nk), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				for k0 := 0; k0 < attnKBC; k0 += nk {
					attnPVT512(nk, d/attnKP, d, &s[k0*attnBQ], &v[k0*d], &o[0])
				}
			}
			b.ReportMetric(float64(b.N)*2*attnBQ*attnKBC*d/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
	b.Run("qk", func(b *testing.B) {
		q := make([]float32, attnBQ*d)
		kp := make([]float32, d*attnKBC)
		for i := 0; i < b.N; i++ {
			attnQKT512(attnKBC/attnKP, d, &q[0], &kp[0], &s[0])
		}
		b.ReportMetric(float64(b.N)*2*attnBQ*attnKBC*d/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	})
}
func BenchmarkTmpFilterTransform(b *testing.B) {
	k, c := 1280, 1280
	w := make([]float32, k*c*9)
	for i := range w {
		w[i] = float32(i%7) * 0.1
	}
	wt := winoWeights{c: c, w: w}
	u := make([]float32, winoXi*12*320)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k0 := 0; k0 < k; k0 += 12 {
			for c0 := 0; c0 < c; c0 += 320 {
				kn := min(12, k-k0)
				wt.transform(u, k0, kn, c0, 320, 0, kn)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(k*c), "ns/pair")
}
func BenchmarkTmpFilterTransformHot(b *testing.B) {
	k, c := 12, 320
	w := make([]float32, k*c*9)
	for i := range w {
		w[i] = float32(i%7) * 0.1
	}
	wt := winoWeights{c: c, w: w}
	u := make([]float32, winoXi*12*320)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		wt.transform(u, 0, 12, 0, 320, 0, 12)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(k*c), "ns/pair")
}
