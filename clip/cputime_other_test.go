//go:build !unix

package clip

import "time"

// cpuTime is not measured here; the benchmark then reports no CPU-seconds.
func cpuTime() time.Duration { return 0 }
