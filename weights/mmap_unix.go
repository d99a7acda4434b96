//go:build unix

package weights

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapFile maps the whole file privately (copy-on-write): tensors may alias the mapping, and a
// graph that writes into an input buffer changes only its own pages, never the file.
// Files that cannot be mapped are read into memory instead; mapped says which happened.
func mapFile(path string, noMmap bool) (data []byte, mapped bool, release func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, false, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, nil, err
	}
	if fi.IsDir() {
		return nil, false, nil, fmt.Errorf("%s is a directory", path)
	}
	size := fi.Size()
	if noMmap || size == 0 || size != int64(int(size)) {
		data, err := os.ReadFile(path)
		return data, false, func() error { return nil }, err
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		data, err := os.ReadFile(path)
		return data, false, func() error { return nil }, err
	}
	return m, true, func() error { return syscall.Munmap(m) }, nil
}

// dropPages tells the kernel the mapped pages wholly inside b are not needed now (a half-weights
// Store has made its own fp16 copy of them): they leave the process's resident set and are read
// from the file again if touched. Only for data of a mapping made by mapFile that nothing has
// written to (MADV_DONTNEED drops private changes).
func dropPages(b []byte) {
	if len(b) == 0 {
		return
	}
	ps := uintptr(syscall.Getpagesize())
	start := uintptr(unsafe.Pointer(&b[0]))
	lo := (start + ps - 1) &^ (ps - 1)
	hi := (start + uintptr(len(b))) &^ (ps - 1)
	if hi <= lo {
		return
	}
	_ = unix.Madvise(b[lo-start:hi-start], unix.MADV_DONTNEED) // advice only: errors are harmless
}
