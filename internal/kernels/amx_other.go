//go:build !amd64

package kernels

import "errors"

func amxCPU() error { return errors.New("AMX needs amd64") }

func amxKernelAsm(a []uint32, lda int, b0, b1 []uint32, c []float32, ldc, kt int, load bool) {
	panic("kernels: AMX kernel on a non-amd64 build")
}

func amxConvKernelAsm(calls []amxCall) {
	panic("kernels: AMX kernel on a non-amd64 build")
}
