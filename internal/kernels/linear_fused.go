package kernels

import "fmt"

// Fused projections: one GEMM for several Linear layers that read the same input (an attention's
// to_q, to_k and to_v), their weight matrices stacked along out and packed as one. Each layer's
// columns of the product go to a matrix of their own, the parts one after another in y, so each
// is a contiguous rows×part array (what Attention reads) without a copy.

// LinearPartAlign is the column count every part of LinearPackedParts and LinearBF16Parts must
// be a multiple of: a micro-kernel tile never straddles two parts.
const LinearPartAlign = sgemmNR

// LinearPackedParts is LinearPacked with the output split by columns into parts of part columns
// (w.Out a multiple of part, part a multiple of LinearPartAlign): y = x·wᵀ + bias, columns
// [i·part, (i+1)·part) stored as the rows×part matrix at y[i·rows·part:].
func LinearPackedParts(x []float32, rows int, w *PackedWeight, bias []float32, part int, y []float32) {
	checkParts(w.Out, part)
	if rows <= 0 || w.Out <= 0 {
		return
	}
	if w.In <= 0 { // sgemmRun's batched C needs k > 0; the product is the bias alone
		fillParts(rows, w.Out, bias, part, y)
		return
	}
	chunk := linearRowChunk(rows, w)
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		a := sgemmSrc{data: x[r0*w.In:], ld: w.In}
		sgemmRun(n, w.Out, w.In, 1, &a, &sgemmSrc{packed: w}, 0, y[r0*part:], part, part, rows*part, bias, false)
	}
}

// LinearBF16Parts is LinearBF16 (w out×in as bfloat16 bits) with the output split into parts as
// LinearPackedParts does.
func LinearBF16Parts(x []float32, rows, in int, w []uint16, out int, bias []float32, part int, y []float32) {
	checkParts(out, part)
	if rows <= 0 || out <= 0 {
		return
	}
	if in <= 0 {
		fillParts(rows, out, bias, part, y)
		return
	}
	if rows >= amxMinRows && amxOn() { // AMX tiles (amx.go)
		linearAMX(amxKernelAsm, x, rows, in, w, out, bias, y, part, part, rows*part)
		return
	}
	ws := sgemmSrc{half: w, brain: true, ld: in, trans: true}
	a := sgemmSrc{data: x, ld: in}
	if bf16Pairs() {
		ws.pairs, ws.pairK = true, in
		a.pairs, a.pairK = true, in
	}
	sgemmRun(rows, out, in, 1, &a, &ws, 0, y, part, part, rows*part, bias, false)
}

func checkParts(out, part int) {
	if part <= 0 || part%LinearPartAlign != 0 || out%part != 0 {
		panic(fmt.Sprintf("kernels: linear output of %d columns in parts of %d", out, part))
	}
}

// fillParts sets each row of every part of y to the part's bias values (zeros without a bias).
func fillParts(rows, out int, bias []float32, part int, y []float32) {
	for p := 0; p < out/part; p++ {
		for r := 0; r < rows; r++ {
			row := y[(p*rows+r)*part : (p*rows+r+1)*part]
			if bias == nil {
				clear(row)
			} else {
				copy(row, bias[p*part:])
			}
		}
	}
}

// PackWeightParts packs the float32 weight matrices ws (each out×in, row-major; out a multiple
// of LinearPartAlign) stacked along out, as PackWeight packs their concatenation, without
// forming it: each part's panels are its own.
func PackWeightParts(ws [][]float32, out, in int) *PackedWeight {
	checkParts(len(ws)*out, out)
	p := newPackedWeight(len(ws)*out, in)
	if p.nPad*in == 0 {
		return p
	}
	p.f32 = sgemmAligned(p.nPad * in)
	tmp := make([]float32, sgemmNR*p.kc)
	for i, w := range ws {
		src := sgemmSrc{data: w[:out*in], ld: in, trans: true}
		for pc := 0; pc < in; pc += p.kc {
			kc := min(p.kc, in-pc)
			packB(p.f32[p.nPad*pc+i*out*kc:], tmp, &src, pc, kc, 0, out)
		}
	}
	return p
}
