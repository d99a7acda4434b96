//go:build unix

package kernels

import (
	"syscall"
	"time"
)

// cpuTime returns the process's user+system CPU time. Benchmarks on this shared machine report
// work per CPU-second next to work per wall-second, since other processes steal wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
