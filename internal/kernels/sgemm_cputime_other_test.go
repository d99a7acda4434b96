//go:build !unix

package kernels

// sgemmCPUSeconds is unavailable here; the GFLOP/cpu-s metric is then omitted.
func sgemmCPUSeconds() float64 { return 0 }
