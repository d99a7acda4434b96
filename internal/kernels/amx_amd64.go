//go:build amd64

package kernels

import (
	"fmt"

	"golang.org/x/sys/cpu"
)

//go:generate sh -c "cd asmgen && go run . amx > ../amx_amd64.s"
//go:generate sh -c "cd asmgen && go run . amxprog > ../amx_program_test.go"

// amxTiles runs n tile-kernel calls (asmgen/amx.go, amxKernelProgram) under one tile
// configuration, which it loads and releases itself.
//
//go:noescape
func amxTiles(calls *amxCall, n int)

// amxKernelAsm is amxTiles on calls whose bounds amxBatch.add checked.
func amxKernelAsm(calls []amxCall) {
	if len(calls) > 0 {
		amxTiles(&calls[0], len(calls))
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
