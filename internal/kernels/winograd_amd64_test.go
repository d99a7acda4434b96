package kernels

import (
	"math/rand"
	"testing"
)

// TestWinoTaps16 checks the AVX-512 tap transposer against its plain-Go twin, bit for bit, on
// 1 to 5 groups read from the very end of their slice (the masked loads read nothing past it).
func TestWinoTaps16(t *testing.T) {
	if !useAVX512 {
		t.Skip("no AVX-512 on this CPU: winoTaps16 does not run here")
	}
	r := rand.New(rand.NewSource(9))
	for n := 1; n <= 5; n++ {
		src := sgemmRandSlice(r, 144*n)
		got, want := make([]float32, 144*n), make([]float32, 144*n)
		winoTaps16(&got[0], &src[0], n)
		winoTapsGo(want, src, n)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%d groups: element %d (group %d, tap %d, filter %d) is %v, want %v", n, i, i/144, i%144/16, i%16, got[i], want[i])
			}
		}
	}
}
