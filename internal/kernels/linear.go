package kernels

// Linear computes y = x·wᵀ + bias for x rows×in, w out×in (PyTorch layout), bias out values or nil,
// y rows×out.
func Linear(x []float32, rows, in int, w []float32, out int, bias []float32, y []float32) {
	if rows <= 0 || out <= 0 {
		return
	}
	beta := float32(0)
	if bias != nil {
		for r := 0; r < rows; r++ {
			copy(y[r*out:(r+1)*out], bias[:out])
		}
		beta = 1
	}
	Sgemm(false, true, rows, out, in, 1, x, in, w, in, beta, y, out)
}
