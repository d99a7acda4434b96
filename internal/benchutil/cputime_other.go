//go:build !unix

package benchutil

import "time"

// CPUTime is not measured on this system: always 0.
func CPUTime() time.Duration { return 0 }
