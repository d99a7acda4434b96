//go:build !amd64

package kernels

import "errors"

func amxCPU() error { return errors.New("AMX needs amd64") }

func amxKernelAsm(calls []amxCall) {
	panic("kernels: AMX kernel on a non-amd64 build")
}
