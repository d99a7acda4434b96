package kernels

import (
	"math/rand"
	"testing"
)

// TestPackBN16 checks the assembly copier of row-major B panels against the plain-Go copy.
func TestPackBN16(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2")
	}
	r := rand.New(rand.NewSource(3))
	for _, kc := range []int{1, 2, 3, 4, 5, 8, 13, 320} {
		for _, ld := range []int{16, 17, 40, 1000} {
			src := sgemmRandSlice(r, (kc-1)*ld+sgemmNR)
			got, want := make([]float32, sgemmNR*kc+1), make([]float32, sgemmNR*kc+1)
			got[len(got)-1], want[len(want)-1] = 7, 7 // nothing written past the panel
			if !packBN16(got[:sgemmNR*kc], src, ld, kc) {
				t.Fatal("packBN16 declined with AVX2")
			}
			for p := 0; p < kc; p++ {
				copy(want[p*sgemmNR:(p+1)*sgemmNR], src[p*ld:])
			}
			if d := sgemmMaxDiff(got, want); !(d == 0) {
				t.Errorf("kc=%d ld=%d: differs by %g", kc, ld, d)
			}
		}
	}
}
