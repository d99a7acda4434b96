package kernels

import (
	"math/rand"
	"testing"
)

// TestBF16APanels checks the widened A panels of a bf16 convolution weight (bf16_widen.go)
// against packA on its row-major bits, for the blocks the GEMM driver asks for (one contiguous
// conversion) and for others (gathered), and that they unpack to the bits.
func TestBF16APanels(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for _, s := range [][2]int{{1, 1}, {5, 7}, {13, 333}, {27, 700}, {150, 1281}} {
		rows, k := s[0], s[1]
		w, _ := bf16Rounded(sgemmRandSlice(r, rows*k))
		a := newBF16APanels(w, rows, k)
		back := make([]uint16, rows*k)
		a.unpack(back)
		if !slicesEqual(back, w) {
			t.Errorf("%d×%d: the panels do not unpack to the bits", rows, k)
		}
		src := sgemmSrc{half: w, brain: true, ld: k}
		type blk struct{ i0, mc, p0, kc int }
		var blocks []blk
		for p0 := 0; p0 < k; p0 += a.kc { // as the driver asks: whole k blocks from panel boundaries
			blocks = append(blocks, blk{0, rows, p0, min(a.kc, k-p0)})
			if rows > sgemmMR {
				blocks = append(blocks, blk{sgemmMR, rows - sgemmMR, p0, min(a.kc, k-p0)})
			}
		}
		blocks = append(blocks, blk{rows / 2, rows - rows/2, k / 3, k - k/3}) // gathered
		if rows > 1 {
			blocks = append(blocks, blk{1, 1, k - 1, 1})
		}
		for _, b := range blocks {
			n := (b.mc + sgemmMR - 1) / sgemmMR * sgemmMR * b.kc
			want, got := make([]float32, n), make([]float32, n)
			for i := range got {
				got[i] = -1
			}
			packA(want, make([]float32, sgemmMR*b.kc), &src, b.i0, b.mc, b.p0, b.kc)
			a.block(got, b.i0, b.mc, b.p0, b.kc)
			if !slicesEqual(got, want) {
				t.Errorf("%d×%d block %+v: widened panels differ from packA on the bits", rows, k, b)
			}
		}
	}
}
