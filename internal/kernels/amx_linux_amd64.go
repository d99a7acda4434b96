package kernels

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux's arch_prctl codes for the dynamically enabled XSTATE features (asm/prctl.h) and the
// tile data feature number (XFEATURE_XTILEDATA).
const (
	archGetXcompPerm  = 0x1022
	archReqXcompPerm  = 0x1023
	xfeatureXtileData = 18
)

// amxPermission asks Linux for the AMX tile data state for the whole process (it is off until
// asked: the first tile instruction would fault) and checks that the permission is now held.
func amxPermission() error {
	if _, _, e := unix.Syscall(unix.SYS_ARCH_PRCTL, archReqXcompPerm, xfeatureXtileData, 0); e != 0 {
		return fmt.Errorf("arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): %w", e)
	}
	var mask uint64
	if _, _, e := unix.Syscall(unix.SYS_ARCH_PRCTL, archGetXcompPerm, uintptr(unsafe.Pointer(&mask)), 0); e != 0 {
		return fmt.Errorf("arch_prctl(ARCH_GET_XCOMP_PERM): %w", e)
	}
	if mask&(1<<xfeatureXtileData) == 0 {
		return fmt.Errorf("arch_prctl: tile data permission not granted (mask %#x)", mask)
	}
	return nil
}
