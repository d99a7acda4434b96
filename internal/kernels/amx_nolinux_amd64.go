//go:build !linux

package kernels

import "errors"

// amxPermission: only Linux's way of enabling the tile data state is implemented.
func amxPermission() error {
	return errors.New("AMX tile data permission is implemented for Linux only")
}
