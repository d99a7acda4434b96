//go:build amd64

package kernels

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate sh -c "cd asmgen && go run . amx > ../amx_amd64.s"
//go:generate sh -c "cd asmgen && go run . amxprog > ../amx_program_test.go"

// amxKernel32x32 is the AMX tile kernel (asmgen/amx.go): C (32×32, row stride ldc floats) =
// C·[load ≠ 0] + A·B for A 32 rows of 16·kt bf16 pairs (row stride lda pairs) and B the 16-column
// pair panels b0, b1 of 16·kt steps each. It configures, uses and releases the tiles itself.
//
//go:noescape
func amxKernel32x32(a *uint32, lda int, b0, b1 *uint32, c *float32, ldc, kt, load int)

// amxKernelAsm is amxKernel32x32 on slices, with their bounds checked first (see amxKernelFunc).
func amxKernelAsm(a []uint32, lda int, b0, b1 []uint32, c []float32, ldc, kt int, load bool) {
	if kt <= 0 || lda < amxKT*kt || ldc < amxNR {
		panic(fmt.Sprintf("kernels: AMX kernel with kt %d, lda %d, ldc %d", kt, lda, ldc))
	}
	_ = a[(amxMR-1)*lda+amxKT*kt-1]
	_ = b0[amxKT*sgemmNR*kt-1]
	_ = b1[amxKT*sgemmNR*kt-1]
	_ = c[(amxMR-1)*ldc+amxNR-1]
	l := 0
	if load {
		l = 1
	}
	amxKernel32x32(unsafe.SliceData(a), lda, unsafe.SliceData(b0), unsafe.SliceData(b1), unsafe.SliceData(c), ldc, kt, l)
}

// amxConv32x32 runs n tile-kernel calls (asmgen/amx.go, amxConvKernelProgram) under one tile
// configuration, which it loads and releases itself.
//
//go:noescape
func amxConv32x32(calls *amxCall, n int)

// amxConvKernelAsm is amxConv32x32 on calls whose bounds amxBatch.add checked.
func amxConvKernelAsm(calls []amxCall) {
	if len(calls) > 0 {
		amxConv32x32(&calls[0], len(calls))
	}
}

// amxCPU reports why the AMX kernel cannot run here: CPUID's AMX-TILE and AMX-BF16 bits (leaf 7,
// EDX bits 24 and 22), then the OS's permission to use the tile data state.
func amxCPU() error {
	switch {
	case !cpu.X86.HasAMXTile:
		return fmt.Errorf("CPU lacks AMX-TILE")
	case !cpu.X86.HasAMXBF16:
		return fmt.Errorf("CPU lacks AMX-BF16")
	}
	return amxPermission()
}
