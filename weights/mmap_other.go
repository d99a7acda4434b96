//go:build !unix

package weights

import (
	"fmt"
	"os"
)

// mapFile reads the whole file: this platform has no mapping support here.
func mapFile(path string, _ bool) (data []byte, mapped bool, release func() error, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false, nil, err
	}
	if fi.IsDir() {
		return nil, false, nil, fmt.Errorf("%s is a directory", path)
	}
	data, err = os.ReadFile(path)
	return data, false, func() error { return nil }, err
}

// dropPages does nothing: nothing is mapped on this platform.
func dropPages([]byte) {}
