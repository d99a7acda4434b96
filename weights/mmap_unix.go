//go:build unix

package weights

import (
	"fmt"
	"os"
	"syscall"
)

// mapFile maps the whole file privately (copy-on-write): tensors may alias the mapping, and a
// graph that writes into an input buffer changes only its own pages, never the file.
// Files that cannot be mapped are read into memory instead.
func mapFile(path string, noMmap bool) (data []byte, release func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is a directory", path)
	}
	size := fi.Size()
	if noMmap || size == 0 || size != int64(int(size)) {
		data, err := os.ReadFile(path)
		return data, func() error { return nil }, err
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		data, err := os.ReadFile(path)
		return data, func() error { return nil }, err
	}
	return m, func() error { return syscall.Munmap(m) }, nil
}
