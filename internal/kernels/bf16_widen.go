package kernels

import "math"

// A convolution's bf16 weights off the pair path (no AVX512-BF16, or it does not pay:
// BF16Status). The float32 GEMM then widens the weights (its A) while packing: per panel of six
// rows, six strided rows widened and interleaved in Go, which at low resolution (a 2×1280×8×8
// 3×3 convolution has 128 output columns for 11520 k steps a row) cost as much as the products:
// 112 against 169 GFLOP/s for float32 weights read in place (2 cores, Intel Xeon). A BF16Weight
// made off the pair path therefore holds its bits in packA's panel layout (bf16APanels), and
// packA widens a block of them with one contiguous conversion. Like the pair panels they take
// the bits' memory (rows rounded up to whole panels), and a kernel wider than 1×1 is packed by
// its first GEMM (a 3×3 convolution that always runs as Winograd keeps its bits).

// bf16APanels is a weight matrix of rows×k bf16 values in packA's layout: for each k block of
// kc steps (block pc at bits[pad·pc:]), panels of sgemmMR rows interleaved along k, the rows
// rounded up to pad with zeros.
type bf16APanels struct {
	bits             []uint16
	rows, pad, k, kc int
}

// newBF16APanels packs w (rows×k bf16 bits, row-major) with the k blocks sgemmRun uses for a
// packed A (sgemmKBlock(0, k, false)).
func newBF16APanels(w []uint16, rows, k int) *bf16APanels {
	a := &bf16APanels{rows: rows, pad: (rows + sgemmMR - 1) / sgemmMR * sgemmMR, k: k, kc: sgemmKBlock(0, k, false)}
	a.bits = make([]uint16, a.pad*k)
	for pc := 0; pc < k; pc += a.kc {
		kc := min(a.kc, k-pc)
		blk := a.bits[a.pad*pc:]
		for r := 0; r < rows; r++ {
			pan := blk[r/sgemmMR*sgemmMR*kc+r%sgemmMR:]
			for q, v := range w[r*k+pc : r*k+pc+kc] {
				pan[q*sgemmMR] = v
			}
		}
	}
	return a
}

// at returns the value of row r, step q.
func (a *bf16APanels) at(r, q int) uint16 {
	pc := q / a.kc * a.kc
	kb := min(a.kc, a.k-pc)
	return a.bits[a.pad*pc+r/sgemmMR*sgemmMR*kb+(q-pc)*sgemmMR+r%sgemmMR]
}

// unpack writes the matrix into w (rows×k bits, row-major).
func (a *bf16APanels) unpack(w []uint16) {
	for r := 0; r < a.rows; r++ {
		row := w[r*a.k : (r+1)*a.k]
		for q := range row {
			row[q] = a.at(r, q)
		}
	}
}

// block is packA for these panels: rows [i0, i0+mc), steps [p0, p0+kc) widened into dst, with
// one contiguous conversion when they are a whole k block of the packing from a panel boundary
// (as the GEMM driver asks for them), else value by value.
func (a *bf16APanels) block(dst []float32, i0, mc, p0, kc int) {
	n := (mc + sgemmMR - 1) / sgemmMR * sgemmMR * kc
	if p0%a.kc == 0 && kc == min(a.kc, a.k-p0) && i0%sgemmMR == 0 && i0+n/kc <= a.pad {
		off := a.pad*p0 + i0*kc
		BF16ToF32(dst[:n], a.bits[off:off+n])
		return
	}
	for ir := 0; ir < mc; ir += sgemmMR {
		for p := 0; p < kc; p++ {
			for r := 0; r < sgemmMR; r++ {
				var v float32
				if row := i0 + ir + r; ir+r < mc && row < a.rows {
					v = math.Float32frombits(uint32(a.at(row, p0+p)) << 16)
				}
				dst[ir*kc+p*sgemmMR+r] = v
			}
		}
	}
}
