package kernels

// normSumAVX2 returns Σ x[i] for i < n (a multiple of 16), accumulated in float64.
//
//go:noescape
func normSumAVX2(x *float32, n int) float64

// normSqDevAVX2 returns Σ (x[i] − mean)² for i < n (a multiple of 16), in float64.
//
//go:noescape
func normSqDevAVX2(x *float32, n int, mean float64) float64

// normAffineAVX2 is the assembly form of normAffine for n a multiple of 8.
//
//go:noescape
func normAffineAVX2(x, y *float32, n int, m, s, b float32, silu bool)

// normRowAVX2 sets y = (x − m)·s·gamma + beta for n (a multiple of 8) values.
//
//go:noescape
func normRowAVX2(x, y, gamma, beta *float32, n int, m, s float32)
