package kernels

import (
	"math"
	"math/rand"
	"runtime"
	"testing"
)

// amxPackedLinear packs a Linear's bf16 weight as PackLinearBF16 does for AMX (pair panels of
// the whole k), on any machine.
func amxPackedLinear(w []uint16, out, in int) *BF16Weight {
	p := &BF16Weight{Rows: out, Cols: in}
	p.data.Store(&bf16Data{bits: w})
	p.pad = (out + sgemmNR - 1) / sgemmNR * sgemmNR
	p.kc = ((in+1)/2 + amxKT - 1) / amxKT * amxKT
	p.pack()
	return p
}

// TestLinearGEGLUAMX runs the AMX GEGLU tiles (the simulated kernel everywhere, the real one on
// AMX) against the plain-Go AMX twin followed by GEGLU, which they must equal bit for bit: odd
// row counts, one and several workers, short scratch.
func TestLinearGEGLUAMX(t *testing.T) {
	kerns := map[string]amxKernelFunc{"simulated": amxKernelSim}
	if amxCPU() == nil && amxOn() {
		kerns["AMX"] = amxKernelAsm
	}
	r := rand.New(rand.NewSource(33))
	for name, kern := range kerns {
		for i, s := range [][3]int{{1, 32, 2}, {70, 64, 96}, {64, 320, 64}, {130, 32, 160}} {
			rows, in, out := s[0], s[1], s[2]
			c := out / 2
			x, wf := sgemmRandSlice(r, rows*in), sgemmRandSlice(r, out*in)
			wh, _ := bf16Rounded(wf)
			var bias []float32
			if i%2 == 0 {
				bias = sgemmRandSlice(r, out)
			}
			h, want := make([]float32, rows*out), make([]float32, rows*c)
			linearAMXGeneric(x, rows, in, wh, out, bias, h)
			GEGLU(want, h, rows, c)
			pw := amxPackedLinear(wh, out, in)
			per := amxGEGLUTile * (out + in/2)
			for _, procs := range []int{1, 3} {
				for _, tiles := range []int{1, 3} {
					old := runtime.GOMAXPROCS(procs)
					got := make([]float32, rows*c)
					for j := range got {
						got[j] = float32(math.NaN())
					}
					ok := linearGEGLUAMX(kern, x, rows, pw, bias, got, make([]float32, tiles*per))
					runtime.GOMAXPROCS(old)
					if !ok {
						t.Fatalf("%s %dx%d→%d: declined", name, rows, in, out)
					}
					for j := range got {
						if math.Float32bits(got[j]) != math.Float32bits(want[j]) {
							t.Fatalf("%s procs=%d tiles=%d %dx%d→%d: y[%d] = %g, twin and GEGLU %g", name, procs, tiles, rows, in, out, j, got[j], want[j])
						}
					}
				}
			}
			if linearGEGLUAMX(kern, x, rows, pw, bias, make([]float32, rows*c), make([]float32, per-1)) {
				t.Errorf("%s: took a scratch shorter than a tile", name)
			}
		}
	}
}
