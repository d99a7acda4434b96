//go:build unix

package benchutil

import (
	"syscall"
	"time"
)

// CPUSeconds is the user+system CPU time of the process so far.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
