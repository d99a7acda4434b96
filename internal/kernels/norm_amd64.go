package kernels

// normMomentsAVX2 returns Σ (x[i] − shift) and Σ (x[i] − shift)² for i < n (a multiple of 8), in
// float64.
//
//go:noescape
func normMomentsAVX2(x *float32, n int, shift float64) (s1, s2 float64)

// normAffineAVX2 is the assembly form of normAffine for n a multiple of 8.
//
//go:noescape
func normAffineAVX2(x, y *float32, n int, m, s, b float32, silu bool)

// normRowAVX2 sets y = (x − m)·s·gamma + beta for n (a multiple of 8) values.
//
//go:noescape
func normRowAVX2(x, y, gamma, beta *float32, n int, m, s float32)
