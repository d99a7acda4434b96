package kernels

import "golang.org/x/sys/cpu"

// f16HasF16C reports whether VCVTPH2PS may run. Every AVX2 CPU we target has F16C, but
// golang.org/x/sys/cpu reports it separately, so check it rather than assume it.
var f16HasF16C = cpu.X86.HasF16C && cpu.X86.HasAVX

// f16ToF32F16C widens n (a multiple of 8) half-precision values with VCVTPH2PS.
//
//go:noescape
func f16ToF32F16C(dst *float32, src *uint16, n int)

// f16BF16ToF32AVX2 widens n (a multiple of 8) bfloat16 values.
//
//go:noescape
func f16BF16ToF32AVX2(dst *float32, src *uint16, n int)
