//go:build unix

package kernels

import "syscall"

// sgemmCPUSeconds returns the process's user+system CPU time. The benchmarks report GFLOP per
// CPU-second next to GFLOP/s, because other processes on a shared machine steal wall time.
func sgemmCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}
