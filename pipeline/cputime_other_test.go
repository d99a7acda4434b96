//go:build !unix

package pipeline

import "time"

// cpuTime is not measured here; the benchmark's cores-used metric then reads 0.
func cpuTime() time.Duration { return 0 }
