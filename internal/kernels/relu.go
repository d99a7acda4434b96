package kernels

import "math"

// Element-wise kernels of TAESD (AutoencoderTiny): ReLU, the fused residual add + ReLU, its
// soft clamp and the affine maps between [-1, 1] and [0, 1]. They are memory-bound; plain Go
// over both cores is as fast as the memory allows.

// ReLU sets dst[i] = max(src[i], 0) (NaN stays NaN, as torch's relu). dst may alias src.
func ReLU(dst, src []float32) {
	dst = dst[:len(src)]
	parallelFor(len(src), elemGrain, func(lo, hi int) {
		d, s := dst[lo:hi], src[lo:hi]
		for i, x := range s {
			if x < 0 {
				x = 0
			}
			d[i] = x
		}
	})
}

// AddReLU sets dst[i] = max(a[i] + b[i], 0): a residual block's sum and its ReLU in one pass.
// dst may alias a or b.
func AddReLU(dst, a, b []float32) {
	dst, b = dst[:len(a)], b[:len(a)]
	parallelFor(len(a), elemGrain, func(lo, hi int) {
		d, x, y := dst[lo:hi], a[lo:hi], b[lo:hi]
		for i := range d {
			v := x[i] + y[i]
			if v < 0 {
				v = 0
			}
			d[i] = v
		}
	})
}

// SoftClamp sets dst[i] = tanh(src[i]/m)·m, each operation rounded to float32 as torch
// computes tanh(x / m) * m (tanh itself in float64, then rounded). dst may alias src.
func SoftClamp(dst, src []float32, m float32) {
	dst = dst[:len(src)]
	for i, x := range src {
		dst[i] = float32(float32(math.Tanh(float64(x/m))) * m)
	}
}

// AddScale sets dst[i] = (src[i] + a)·b, rounded as the two float32 operations. dst may alias src.
func AddScale(dst, src []float32, a, b float32) {
	dst = dst[:len(src)]
	parallelFor(len(src), elemGrain, func(lo, hi int) {
		d, s := dst[lo:hi], src[lo:hi]
		for i, x := range s {
			d[i] = float32(x+a) * b
		}
	})
}
