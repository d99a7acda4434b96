package kernels

import (
	"fmt"
	"testing"
)

func BenchmarkZZAMXKernel(b *testing.B) {
	if !amxOn() {
		b.Skip("no AMX")
	}
	for _, kt := range []int{4, 16, 32} {
		for _, nb := range []int{1, 8, 64} { // B panels distinct (streams when large)
			a := make([]uint32, 32*16*kt)
			bb := make([]uint32, nb*2*16*16*kt)
			c := make([]float32, 32*32)
			b.Run(fmt.Sprintf("kt%d_nb%d", kt, nb), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					j := i % nb
					amxKernelAsm(a, 16*kt, bb[j*2*256*kt:], bb[(j*2+1)*256*kt:], c, 32, kt, true)
				}
				b.ReportMetric(float64(b.N)*2*32*32*32*float64(kt)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
