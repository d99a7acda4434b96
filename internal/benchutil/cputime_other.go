//go:build !unix

package benchutil

// CPUSeconds is not measured on this system: always 0.
func CPUSeconds() float64 { return 0 }
