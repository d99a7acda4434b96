package kernels

// Linear computes y = x·wᵀ + bias for x rows×in, w out×in (PyTorch layout), bias out values or nil,
// y rows×out.
func Linear(x []float32, rows, in int, w []float32, out int, bias []float32, y []float32) {
	linear(x, rows, in, &sgemmSrc{data: w, ld: in, trans: true}, out, bias, y)
}

// LinearF16 is Linear with the weights w (out×in) kept in IEEE half precision (raw bits, as stored
// in fp16 checkpoints); they are widened to float32 while being packed, so the arithmetic and the
// result are those of Linear on the widened weights.
func LinearF16(x []float32, rows, in int, w []uint16, out int, bias []float32, y []float32) {
	linear(x, rows, in, &sgemmSrc{half: w, ld: in, trans: true}, out, bias, y)
}

func linear(x []float32, rows, in int, w *sgemmSrc, out int, bias []float32, y []float32) {
	if rows <= 0 || out <= 0 {
		return
	}
	a := sgemmSrc{data: x, ld: in}
	sgemmRun(rows, out, in, 1, &a, w, 0, y, out, 0, 0, bias, false) // bias fused per tile
}
