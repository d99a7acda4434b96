//go:build !amd64

package kernels

const f16HasF16C = false

func f16ToF32F16C(dst *float32, src *uint16, n int) {
	panic("kernels: F16C path on a non-amd64 build")
}

func f16BF16ToF32AVX2(dst *float32, src *uint16, n int) {
	panic("kernels: AVX2 path on a non-amd64 build")
}
